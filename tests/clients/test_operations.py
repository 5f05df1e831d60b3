"""The example operations (examples/operations): valid against the schema the code builds, within the
server's limits at their largest pages, and listed in the committed trusted-documents manifest."""

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    get_named_type,
    parse,
    type_from_ast,
    validate,
)
from graphql.execution.values import get_variable_values
from graphql.pyutils import Undefined

from schema.export import render_sdl
from schema.extensions.complexity import Limits, measure_cost, measure_structure
from scripts import trusted_documents
from tests.clients.tools import MANIFEST_PATH

OPERATIONS = trusted_documents.read_operations()
OPERATION_NAMES = sorted(
    d.name.value for d in OPERATIONS.definitions if isinstance(d, OperationDefinitionNode) and d.name is not None
)
# The storefront's screens, each an operation a client generator turns into a typed call.
SCREENS = {"CatalogPage", "ProductPage", "SignIn", "RefreshSession", "PlaceOrder", "OrderHistory", "AdjustStock"}
# Values for required variables when measuring cost: any valid value costs the same.
SAMPLE_SCALARS: dict[str, Any] = {
    "Int": 1,
    "Float": 1.0,
    "String": "x",
    "ID": "x",
    "Boolean": True,
    "Decimal": "1.00",
    "DateTime": "2026-01-01T00:00:00+00:00",
}


@pytest.fixture(scope="module")
def code_schema() -> GraphQLSchema:
    return build_schema(render_sdl())


def _sample(type_: GraphQLInputType) -> Any:
    if isinstance(type_, GraphQLNonNull):
        return _sample(type_.of_type)
    if isinstance(type_, GraphQLList):
        return [_sample(type_.of_type)]
    if isinstance(type_, GraphQLInputObjectType):
        return {
            name: _sample(field.type)
            for name, field in type_.fields.items()
            if isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined
        }
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    return SAMPLE_SCALARS[get_named_type(type_).name]


def _largest_page_variables(schema: GraphQLSchema, operation: OperationDefinitionNode) -> dict[str, Any]:
    """Every page size at the server's maximum, every other required variable a valid sample."""
    variables = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        type_ = type_from_ast(schema, definition.type)
        assert type_ is not None
        if name == "first" or name.endswith("First"):
            variables[name] = Limits().max_page_size
        elif isinstance(type_, GraphQLNonNull):
            variables[name] = _sample(type_)
    return variables


def test_example_operations_are_the_storefront_screens() -> None:
    # then
    assert set(OPERATION_NAMES) == SCREENS


def test_example_operations_are_valid_against_the_schema_of_the_code(code_schema: GraphQLSchema) -> None:
    # when
    errors = validate(code_schema, OPERATIONS)

    # then
    assert errors == []


@pytest.mark.parametrize("name", OPERATION_NAMES)
def test_example_operation_stays_within_depth_and_cost_limits_at_its_largest_pages(
    code_schema: GraphQLSchema, name: str
) -> None:
    # given
    limits = Limits()
    own_document = parse(trusted_documents.documents(OPERATIONS)[name])
    operation = next(d for d in own_document.definitions if isinstance(d, OperationDefinitionNode))
    coerced = get_variable_values(
        code_schema, operation.variable_definitions or (), _largest_page_variables(code_schema, operation)
    )
    assert not isinstance(coerced, list), coerced

    # when
    structure = measure_structure(own_document, name, limits)
    cost = measure_cost(code_schema, own_document, operation, coerced, limits)

    # then
    assert structure.depth <= limits.max_depth
    assert cost <= limits.max_cost


def test_trusted_documents_manifest_is_current() -> None:
    # when
    status = trusted_documents.main(["--check"])

    # then
    assert status == 0, "examples/trusted-documents.json is stale: run `make codegen`"


def test_trusted_documents_manifest_holds_each_operation_once_keyed_by_its_sha256() -> None:
    # given
    manifest: dict[str, str] = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))

    # then
    names = [
        d.name.value
        for text in manifest.values()
        for d in parse(text).definitions
        if isinstance(d, OperationDefinitionNode) and d.name is not None
    ]
    assert sorted(names) == OPERATION_NAMES
    assert all(key == hashlib.sha256(text.encode()).hexdigest() for key, text in manifest.items())


def test_trusted_documents_check_fails_naming_make_codegen_when_the_manifest_is_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    stale = tmp_path / "trusted-documents.json"
    stale.write_text("{}\n", encoding="utf-8")

    # when
    status = trusted_documents.main(["--check", "--manifest", str(stale)])

    # then
    assert status == 1
    assert "run `make codegen`" in capsys.readouterr().err


def test_trusted_documents_write_then_check_round_trips(tmp_path: Path) -> None:
    # given
    written = tmp_path / "trusted-documents.json"

    # when
    wrote = trusted_documents.main(["--manifest", str(written)])
    checked = trusted_documents.main(["--check", "--manifest", str(written)])

    # then
    assert (wrote, checked) == (0, 0)
    assert written.read_text(encoding="utf-8").endswith("}\n")
    assert written.read_text(encoding="utf-8") == MANIFEST_PATH.read_text(encoding="utf-8")


def test_trusted_document_is_the_operation_then_the_fragments_it_uses_by_name(tmp_path: Path) -> None:
    # given: the operation spreads Zed, which spreads Alpha (in another file); Unused is spread by nothing
    (tmp_path / "one.graphql").write_text(
        "# a comment\nquery Screen { me { ...Zed } }\nfragment Zed on User { id ...Alpha }\n", encoding="utf-8"
    )
    (tmp_path / "two.graphql").write_text(
        "fragment Alpha on User { name }\nfragment Unused on User { email }\n", encoding="utf-8"
    )

    # when
    texts = trusted_documents.documents(trusted_documents.read_operations(tmp_path))

    # then
    assert texts == {
        "Screen": "query Screen {\n  me {\n    ...Zed\n  }\n}\n\n"
        "fragment Alpha on User {\n  name\n}\n\n"
        "fragment Zed on User {\n  id\n  ...Alpha\n}"
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{ me { id } }", "every operation needs a name"),
        ("query A { me { id } }\nquery A { me { name } }", "`A` is defined twice"),
        ("type Extra { id: ID }", "only operations and fragments"),
    ],
)
def test_trusted_documents_refuse_unnamed_repeated_or_foreign_definitions(
    tmp_path: Path, text: str, problem: str
) -> None:
    # given
    (tmp_path / "screen.graphql").write_text(text, encoding="utf-8")

    # when
    with pytest.raises(trusted_documents.OperationsError) as refused:
        trusted_documents.read_operations(tmp_path)

    # then
    assert problem in str(refused.value)


def test_trusted_documents_refuse_operations_the_sdl_does_not_validate(tmp_path: Path) -> None:
    # given
    (tmp_path / "screen.graphql").write_text("query Screen { me { shoeSize } }", encoding="utf-8")

    # when
    with pytest.raises(trusted_documents.OperationsError) as refused:
        trusted_documents.build(tmp_path)

    # then
    assert "Cannot query field 'shoeSize' on type 'User'" in str(refused.value)
