"""What the typed inputs of account use cases share: camelCase paths, and problems in the order of their fields."""

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from domains.common.exceptions import FieldProblem
from domains.common.validation import FrozenInput


class CamelInput(FrozenInput):
    # Problems carry the paths of the GraphQL arguments, which are camelCase: ("input", "expiresAt").
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)


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
