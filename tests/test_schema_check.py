"""The breaking-change gate (`make schema-check`): scripts/schema_check.py against edited copies of the SDL."""

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    FieldDefinitionNode,
    InputObjectTypeDefinitionNode,
    InputValueDefinitionNode,
    NamedTypeNode,
    NameNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    parse,
    print_ast,
)

from schema.export import render_sdl
from scripts.schema_check import BASELINE_PATH, main

# graphql-core's nodes are frozen dataclasses whose field types mypy's replace() plugin cannot follow.
_replace: Any = replace


def _named(name: str) -> NamedTypeNode:
    return NamedTypeNode(name=NameNode(value=name))


def _edited_sdl(tmp_path: Path, type_name: str, edit: Callable[[list[Any]], list[Any]]) -> Path:
    definitions = [
        _replace(definition, fields=tuple(edit(list(definition.fields or ()))))
        if isinstance(definition, (ObjectTypeDefinitionNode, InputObjectTypeDefinitionNode))
        and definition.name.value == type_name
        else definition
        for definition in parse(render_sdl()).definitions
    ]
    path = tmp_path / "current.graphql"
    path.write_text(print_ast(DocumentNode(definitions=tuple(definitions))), encoding="utf-8")
    return path


def _without(field: str) -> Callable[[list[Any]], list[Any]]:
    return lambda fields: [f for f in fields if f.name.value != field]


def _acknowledge(tmp_path: Path, kind: str, description: str, reason: str = "clients moved to Product.handle") -> Path:
    path = tmp_path / "acknowledged.toml"
    path.write_text(
        f'[[change]]\ntype = "{kind}"\ndescription = "{description}"\nreason = "{reason}"\n', encoding="utf-8"
    )
    return path


def test_the_code_keeps_the_published_contract(capsys: pytest.CaptureFixture[str]) -> None:
    # when
    status = main([])

    # then
    assert status == 0, capsys.readouterr().out
    assert BASELINE_PATH.is_file()


def test_removing_a_field_fails_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given
    current = _edited_sdl(tmp_path, "Product", _without("slug"))

    # when
    status = main(["--current", str(current), "--acknowledged", str(tmp_path / "none.toml")])

    # then
    out = capsys.readouterr().out
    assert status == 1
    assert "FIELD_REMOVED: Field Product.slug was removed. [UNACKNOWLEDGED]" in out


def test_an_acknowledged_removal_passes_and_a_stale_acknowledgement_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    current = _edited_sdl(tmp_path, "Product", _without("slug"))
    acknowledged = _acknowledge(tmp_path, "FIELD_REMOVED", "Field Product.slug was removed.")

    # when
    removed = main(["--current", str(current), "--acknowledged", str(acknowledged)])
    kept = main(["--acknowledged", str(acknowledged)])

    # then
    out = capsys.readouterr().out
    assert removed == 0
    assert "[acknowledged]" in out
    assert kept == 1
    assert "stale       FIELD_REMOVED: Field Product.slug was removed." in out


def test_adding_an_optional_field_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given
    nickname = FieldDefinitionNode(
        name=NameNode(value="nickname"), type=_named("String"), arguments=(), directives=(), description=None
    )
    current = _edited_sdl(tmp_path, "Product", lambda fields: [*fields, nickname])

    # when
    status = main(["--current", str(current)])

    # then
    out = capsys.readouterr().out
    assert status == 0, out
    assert "breaking" not in out.replace("breaking acknowledged", "")


def test_a_required_input_field_fails_and_an_optional_one_is_reported_as_dangerous(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    def field(name: str, *, required: bool) -> InputValueDefinitionNode:
        kind = NonNullTypeNode(type=_named("String")) if required else _named("String")
        return InputValueDefinitionNode(name=NameNode(value=name), type=kind, directives=(), description=None)

    required = _edited_sdl(tmp_path, "ProductFilter", lambda fields: [*fields, field("vendor", required=True)])
    required_sdl = required.read_text(encoding="utf-8")
    optional = _edited_sdl(tmp_path, "ProductFilter", lambda fields: [*fields, field("vendor", required=False)])

    # when
    (tmp_path / "required.graphql").write_text(required_sdl, encoding="utf-8")
    required_status = main(["--current", str(tmp_path / "required.graphql")])
    required_out = capsys.readouterr().out
    optional_status = main(["--current", str(optional)])
    optional_out = capsys.readouterr().out

    # then
    assert required_status == 1
    assert "REQUIRED_INPUT_FIELD_ADDED" in required_out
    assert optional_status == 0
    assert "dangerous   OPTIONAL_INPUT_FIELD_ADDED" in optional_out


def test_an_acknowledgement_needs_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given
    acknowledged = _acknowledge(tmp_path, "FIELD_REMOVED", "Field Product.slug was removed.", reason=" ")

    # when
    status = main(["--acknowledged", str(acknowledged)])

    # then
    assert status == 2
    assert "needs reason" in capsys.readouterr().err


def test_compares_with_a_git_revision(capsys: pytest.CaptureFixture[str]) -> None:
    # when
    status = main(["--against", "HEAD"])
    unknown = main(["--against", "no-such-revision-anywhere"])

    # then
    assert status == 0, capsys.readouterr().out
    assert unknown == 2
