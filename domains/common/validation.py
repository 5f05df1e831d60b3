"""Declarative input validation: a use case's typed input is a frozen pydantic model, its problems userErrors.

A service validates its input once, with `validated(SomeInput, data)`: every constraint the model
declares (lengths, patterns, ranges) is checked, and every problem at once becomes an
`InvalidInputError` whose `FieldProblem`s carry the codes of SPEC's `UserErrorCode` and the path
of the offending value from the mutation's arguments (`("input", "items", "0", "quantity")`).

    class ReviewCreate(FrozenInput):
        product_id: int
        rating: Annotated[int, Field(ge=1, le=5, description="Rate from 1 to 5.")]
        title: Annotated[str, Field(max_length=120)] = ""

The message of an INVALID problem is the field's `description` when it has one (a hint a form can
show), else a generic one; lengths get a message naming the limit.
"""

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from domains.common.exceptions import ErrorCode, FieldProblem, InvalidInputError

ENTER_A_VALUE = "Enter a value."
INVALID_VALUE = "The value is not valid here."

_REQUIRED = frozenset({"missing"})
_TOO_LONG = frozenset({"string_too_long", "too_long"})
_TOO_SHORT = frozenset({"string_too_short", "too_short"})


class FrozenInput(BaseModel):
    """The typed input of one use case: immutable, and refusing fields it does not declare.

    Fields are also known by their camelCase alias, so a problem's path names the value as the
    GraphQL input does: `("input", "parentId")`, `("input", "idempotencyKey")`.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, validate_by_name=True, validate_by_alias=True
    )


Input = TypeVar("Input", bound=BaseModel)


def validated(model: type[Input], data: Mapping[str, Any], *, path: Sequence[str] = ("input",)) -> Input:
    """Build `model` from `data`; raise InvalidInputError with every problem, each with its code and path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError([_problem(model, error, tuple(path)) for error in exc.errors()]) from exc


def _problem(model: type[BaseModel], error: ErrorDetails, path: tuple[str, ...]) -> FieldProblem:
    location = tuple(str(part) for part in error["loc"])
    field = path + location
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind in _REQUIRED:
        return FieldProblem(ErrorCode.REQUIRED, ENTER_A_VALUE, field)
    if kind in _TOO_SHORT:
        minimum = int(context.get("min_length", 1))
        if minimum <= 1:
            return FieldProblem(ErrorCode.REQUIRED, ENTER_A_VALUE, field)
        return FieldProblem(ErrorCode.TOO_SHORT, f"Use at least {minimum} characters.", field)
    if kind in _TOO_LONG:
        maximum = context.get("max_length")
        unit = "characters" if kind == "string_too_long" else "items"
        return FieldProblem(ErrorCode.TOO_LONG, f"Use at most {maximum} {unit}.", field)
    return FieldProblem(ErrorCode.INVALID, _hint(model, location) or INVALID_VALUE, field)


def _hint(model: type[BaseModel], location: tuple[str, ...]) -> str | None:
    # The description of the top-level field the problem is in: `items.0.quantity` -> `items`'s model.
    current: type[BaseModel] | None = model
    description: str | None = None
    for part in location:
        if current is None:
            continue
        by_alias = {info.alias or name: info for name, info in current.model_fields.items()}
        info = by_alias.get(part) or current.model_fields.get(part)
        if info is None:
            continue
        description = info.description
        annotation = info.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        current = next((arg for arg in inner if isinstance(arg, type) and issubclass(arg, BaseModel)), None)
    return description


def in_field_order(model: type[BaseModel], problems: Sequence[FieldProblem]) -> list[FieldProblem]:
    """Order problems as a form shows them: by field in the model's order, then by list index, else as found.

    A rule checked outside pydantic (the similarity of a password, the roles an API key may hold) adds its
    problems after pydantic's; this puts `("input", "roles", "1")` between `name` and `expiresAt`.
    """
    fields = [info.alias or name for name, info in model.model_fields.items()]

    def position(problem: FieldProblem) -> tuple[int, int]:
        path = problem.field or ()
        top = fields.index(path[1]) if len(path) > 1 and path[1] in fields else len(fields)
        index = int(path[2]) if len(path) > 2 and path[2].isdigit() else -1
        return top, index

    return sorted(problems, key=position)
