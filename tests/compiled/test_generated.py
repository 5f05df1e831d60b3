"""Generated queries (hypothesis-graphql, from the schema) answer the same through both execution paths."""

from decimal import Decimal

from fastapi import FastAPI
from graphql import GraphQLInterfaceType, GraphQLObjectType, GraphQLSchema, build_schema, is_non_null_type
from httpx import AsyncClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes, queries

from schema.export import render_sdl
from tests.auth import ANONYMOUS, Account
from tests.compiled.support import Case, Catalog, both_paths

SDL = render_sdl()
ROOT_FIELDS = ["node", "nodes", "me", "products", "product", "categories", "category", "orders", "order"]


def _without_optional_arguments() -> GraphQLSchema:
    """The schema with every optional argument left out: queries of it succeed often, so the plan serves them."""
    schema = build_schema(SDL)
    for type_ in schema.type_map.values():
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for field in type_.fields.values():
                field.args = {name: arg for name, arg in field.args.items() if is_non_null_type(arg.type)}
    return schema


# Random arguments mostly meet the resolvers' refusals (graphql-core answers those, with their errors);
# without them the queries mostly succeed and the compiled path answers.
CUSTOM_SCALARS = {
    "Decimal": st.decimals(min_value=Decimal(0), max_value=Decimal(1000), places=2).map(str).map(nodes.String),
    "DateTime": st.datetimes().map(lambda value: value.isoformat() + "Z").map(nodes.String),
}


@hypothesis_settings(
    # The same corpus on every run (no example database): a difference found is found again.
    derandomize=True,
    database=None,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    document=st.one_of(
        queries(SDL, fields=ROOT_FIELDS, custom_scalars=CUSTOM_SCALARS, allow_x00=False),
        queries(_without_optional_arguments(), fields=["products", "categories", "me", "orders"], allow_x00=False),
    )
)
async def test_generated_queries_answer_the_same(
    app: FastAPI, client: AsyncClient, catalog: Catalog, staff: Account, document: str
) -> None:
    case = Case("generated", document)
    for caller in (ANONYMOUS, staff):
        reference, compiled, _ = await both_paths(app, client, caller, case)
        assert compiled == reference, document
