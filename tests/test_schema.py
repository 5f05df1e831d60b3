from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
)

from schema import build_schema
from schema.export import SDL_PATH, render_sdl

SCHEMA = build_schema()


def test_committed_sdl_matches_the_code() -> None:
    # given
    committed = SDL_PATH.read_text(encoding="utf-8")

    # when
    current = render_sdl()

    # then
    assert committed == current, "schema/schema.graphql is stale: run `make schema` and commit it"


def _missing_descriptions() -> list[str]:
    missing: list[str] = []
    for name, graphql_type in SCHEMA._schema.type_map.items():
        if name.startswith("__"):
            continue
        if not graphql_type.description:
            missing.append(name)
        if isinstance(graphql_type, (GraphQLObjectType, GraphQLInterfaceType)):
            for field_name, field in graphql_type.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                missing += [f"{name}.{field_name}({arg})" for arg, a in field.args.items() if not a.description]
        elif isinstance(graphql_type, GraphQLInputObjectType):
            missing += [f"{name}.{f}" for f, field in graphql_type.fields.items() if not field.description]
        elif isinstance(graphql_type, GraphQLEnumType):
            missing += [f"{name}.{v}" for v, value in graphql_type.values.items() if not value.description]
    return missing


def test_every_type_field_argument_and_enum_value_has_a_description() -> None:
    # when
    missing = _missing_descriptions()

    # then
    assert missing == []


def test_schema_exposes_the_contract_scalars() -> None:
    # when
    type_map = SCHEMA._schema.type_map

    # then
    assert isinstance(type_map["Decimal"], GraphQLScalarType)
    assert isinstance(type_map["DateTime"], GraphQLScalarType)
    assert isinstance(type_map["Node"], GraphQLInterfaceType)
