"""`validated` and `in_field_order` called directly: each pydantic error kind becomes its code, message and path."""

from typing import Annotated

import pytest
from pydantic import Field, StringConstraints

from domains.common.exceptions import ErrorCode, FieldProblem, InvalidInputError
from domains.common.validation import ENTER_A_VALUE, INVALID_VALUE, FrozenInput, in_field_order, validated


class Line(FrozenInput):
    product_id: int
    quantity: Annotated[int, Field(ge=1, description="Order at least one unit.")]
    note: Annotated[int, Field(ge=0)] = 0


class Order(FrozenInput):
    code: Annotated[str, StringConstraints(min_length=3, max_length=5)]
    label: Annotated[str, StringConstraints(min_length=1, max_length=4)] = "x"
    lines: Annotated[tuple[Line, ...], Field(max_length=2, description="The order's lines.")] = ()
    tags: Annotated[tuple[str, ...], Field(min_length=2)] = ("a", "b")
    idempotency_key: Annotated[str, Field(pattern=r"^[a-z]+$", description="Lower-case letters only.")] = "abc"
    size: Annotated[int, Field(ge=0)] = 0


def _problems(data: dict[str, object], **kwargs: tuple[str, ...]) -> list[tuple[ErrorCode, str, tuple[str, ...]]]:
    with pytest.raises(InvalidInputError) as refused:
        validated(Order, data, **kwargs)
    return [(p.code, p.message, p.field or ()) for p in refused.value.problems]


def test_validated_returns_the_model_built_from_names_or_camel_case_aliases() -> None:
    # when
    by_alias = validated(Order, {"code": "abc", "idempotencyKey": "key"})
    by_name = validated(Order, {"code": "abc", "idempotency_key": "key"})

    # then
    assert by_alias == by_name == Order(code="abc", idempotency_key="key")


def test_a_missing_value_and_a_blank_one_under_a_minimum_of_one_are_required() -> None:
    # when
    problems = _problems({"label": ""})

    # then
    assert problems == [
        (ErrorCode.REQUIRED, ENTER_A_VALUE, ("input", "code")),
        (ErrorCode.REQUIRED, ENTER_A_VALUE, ("input", "label")),
    ]


def test_a_value_under_a_larger_minimum_is_too_short_and_names_the_minimum() -> None:
    # when
    text = _problems({"code": "ab"})
    items = _problems({"code": "abc", "tags": ["one"]})

    # then
    assert text == [(ErrorCode.TOO_SHORT, "Use at least 3 characters.", ("input", "code"))]
    assert items == [(ErrorCode.TOO_SHORT, "Use at least 2 characters.", ("input", "tags"))]


def test_a_value_over_its_maximum_is_too_long_in_characters_or_items() -> None:
    # given
    line = {"productId": 1, "quantity": 1}

    # when
    problems = _problems({"code": "abcdef", "lines": [line, line, line]})

    # then
    assert problems == [
        (ErrorCode.TOO_LONG, "Use at most 5 characters.", ("input", "code")),
        (ErrorCode.TOO_LONG, "Use at most 2 items.", ("input", "lines")),
    ]


def test_an_invalid_value_gets_its_fields_description_as_the_hint_else_a_generic_message() -> None:
    # when: a camelCase field with a description, a nested one with a description, a nested and a plain one without
    problems = _problems(
        {
            "code": "abc",
            "idempotencyKey": "NOT LOWER",
            "lines": [{"productId": 1, "quantity": 0}, {"productId": 2, "quantity": 1, "note": -1}],
            "size": -1,
        }
    )

    # then
    assert problems == [
        (ErrorCode.INVALID, "Order at least one unit.", ("input", "lines", "0", "quantity")),
        (ErrorCode.INVALID, INVALID_VALUE, ("input", "lines", "1", "note")),
        (ErrorCode.INVALID, "Lower-case letters only.", ("input", "idempotencyKey")),
        (ErrorCode.INVALID, INVALID_VALUE, ("input", "size")),
    ]


def test_an_invalid_value_below_a_field_that_is_no_model_gets_the_generic_message() -> None:
    # when: `tags.0` is a string, not a model: the walk finds no description for it
    problems = _problems({"code": "abc", "tags": [1, "b", "c"]})

    # then
    assert problems == [(ErrorCode.INVALID, INVALID_VALUE, ("input", "tags", "0"))]


def test_an_unknown_field_is_invalid_at_its_path_under_the_given_prefix() -> None:
    # when
    problems = _problems({"code": "abc", "colour": "red"}, path=("order",))

    # then
    assert problems == [(ErrorCode.INVALID, INVALID_VALUE, ("order", "colour"))]


def _problem(*field: str) -> FieldProblem:
    return FieldProblem(ErrorCode.INVALID, "/".join(field), field or None)


def test_in_field_order_sorts_by_field_then_index_and_puts_unknown_paths_last_as_found() -> None:
    # given: problems in the order rules outside pydantic add them
    found = [
        _problem("input", "unknown"),
        _problem("input", "size"),
        _problem("input", "tags", "1"),
        _problem("input", "tags", "0"),
        _problem("input", "tags"),
        _problem("input"),
        _problem(),
        _problem("input", "idempotencyKey"),
        _problem("input", "lines", "x"),
        _problem("input", "code"),
    ]

    # when
    ordered = in_field_order(Order, found)

    # then
    assert [p.field for p in ordered] == [
        ("input", "code"),
        ("input", "lines", "x"),
        ("input", "tags"),
        ("input", "tags", "0"),
        ("input", "tags", "1"),
        ("input", "idempotencyKey"),
        ("input", "size"),
        ("input", "unknown"),
        ("input",),
        None,
    ]


def test_an_invalid_value_given_by_its_python_name_gets_its_hint_too() -> None:
    # when: the problem's path names the field as it was given, not by its alias
    problems = _problems({"code": "abc", "idempotency_key": "NOT LOWER"})

    # then
    assert problems == [(ErrorCode.INVALID, "Lower-case letters only.", ("input", "idempotency_key"))]
