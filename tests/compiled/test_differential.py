"""The compiled path (schema/compiled/) answers every query as graphql-core does, byte for byte after orjson.

Each document runs twice against the same app and database, once with `graphql_compiled` off (graphql-core)
and once on, as anonymous, a customer, staff and an API key. Only the figures that differ between any two
requests are set aside: each error's `requestId`, and the cost budget's `remaining` and `resetAt`.
"""

import base64
from pathlib import Path

from fastapi import FastAPI
from graphql import parse, print_ast
from graphql.utilities import separate_operations
from httpx import AsyncClient

from api.settings import Settings
from bench.operations import PRODUCT_BY_ID_DOCUMENT, top_products_document
from schema.compiled.extension import COMPILED, GRAPHQL_CORE
from tests.auth import Caller
from tests.compiled.support import Case, Catalog, both_paths

OPERATIONS_DIR = Path(__file__).resolve().parents[2] / "examples" / "operations"


def _global_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def _example_documents() -> dict[str, str]:
    """Each query of examples/operations as a document of its own, with the fragments it uses."""
    source = "\n".join(path.read_text() for path in sorted(OPERATIONS_DIR.glob("*.graphql")))
    separated = separate_operations(parse(source))
    return {name: print_ast(document) for name, document in separated.items()}


EXAMPLES = _example_documents()
SKIP_AND_INCLUDE = """query S($withReviews: Boolean!, $noCategory: Boolean = false) {
  products(first: 4) { nodes { id
    reviews(first: 2) @include(if: $withReviews) { totalCount nodes { rating author { name } } }
    category @skip(if: $noCategory) { name }
    ... @include(if: $withReviews) { name slug } } } }"""


def _cases(catalog: Catalog) -> list[tuple[Case, str]]:
    """(case, the path that must serve it with the compiled path on)."""
    product = _global_id("Product", catalog.products[0])
    hidden = _global_id("Product", catalog.hidden)
    category = _global_id("Category", catalog.categories[1])
    review = _global_id("Review", catalog.reviews[0])
    user = _global_id("User", catalog.users[0])
    cases = [
        (Case("TopProducts", top_products_document(), operation_name="TopProducts"), COMPILED),
        (Case("ProductById", PRODUCT_BY_ID_DOCUMENT, {"id": product}, "ProductById"), COMPILED),
        (Case("ProductById hidden", PRODUCT_BY_ID_DOCUMENT, {"id": hidden}, "ProductById"), COMPILED),
        (Case("CatalogPage", EXAMPLES["CatalogPage"], {}, "CatalogPage"), COMPILED),
        (
            Case(
                "CatalogPage ordered",
                EXAMPLES["CatalogPage"],
                {"orderBy": {"field": "PRICE", "direction": "DESC"}, "first": 2, "filter": {"inStock": True}},
                "CatalogPage",
            ),
            COMPILED,
        ),
        (
            Case("ProductPage", EXAMPLES["ProductPage"], {"slug": catalog.slug, "reviewsFirst": 2}, "ProductPage"),
            COMPILED,
        ),
        (Case("ProductPage missing", EXAMPLES["ProductPage"], {"slug": "nothing"}, "ProductPage"), COMPILED),
        (
            Case(
                "aliases",
                """{ cheap: products(first: 2, orderBy: {field: PRICE}) {
                      edges { cursor node { id n: name p: price { a: amount } } } }
                    dear: products(first: 2, orderBy: {field: PRICE, direction: DESC}) {
                      pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount
                      nodes { id name again: name } } }""",
            ),
            COMPILED,
        ),
        (
            Case(
                "fragments on node",
                """query Nodes($ids: [ID!]!, $id: ID!) {
                     node(id: $id) { __typename id ...Card ... on Category { slug parent { name } } }
                     nodes(ids: $ids) { __typename ... on Node { id } ...Card
                       ... on Review { stars: rating product { name } }
                       ... on Category { name children { name } } ... on User { name email roles } } }
                   fragment Card on Product { name rating { average count } price { ...Amount } isPublished stock }
                   fragment Amount on Money { amount currency }""",
                {"id": product, "ids": [product, category, review, user, hidden, _global_id("Product", 10**6)]},
            ),
            COMPILED,
        ),
        (
            Case(
                "skip and include",
                SKIP_AND_INCLUDE,
                {"withReviews": True},
            ),
            COMPILED,
        ),
        (
            Case(
                "skip and include, other values",
                SKIP_AND_INCLUDE,
                {"withReviews": False, "noCategory": True},
            ),
            COMPILED,
        ),
        (
            Case(
                "review cards",
                """{ products(first: 4) { nodes { id reviews(first: 2) {
                     __typename totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
                     edges { cursor node { __typename id rating body createdAt
                       author { __typename id name } } } } } } }""",
            ),
            COMPILED,
        ),
        (
            Case(
                "review cards beside whole reviews",
                """{ products(first: 4) { nodes {
                     cards: reviews(first: 2) { nodes { rating author { name } } }
                     whole: reviews(first: 2) { nodes { title author { name email createdAt } product { name } } }
                     byRating: reviews(last: 2, orderBy: {field: RATING, direction: ASC}) {
                       pageInfo { hasPreviousPage startCursor }
                       edges { cursor node { rating author { id } } } } } } }""",
            ),
            COMPILED,
        ),
        (
            Case(
                "review cards read from rows",
                """{ products(first: 4) { nodes { id reviews(first: 3) { __typename
                     edges { __typename node { ...Card stars: rating } }
                     all: nodes { __typename id createdAt writer: author { __typename id ... on User { n: name } } }
                   } } } }
                   fragment Card on Review { id body author { name } }""",
            ),
            COMPILED,
        ),
        (
            Case(
                "products read from rows",
                """query Rows($first: Int, $filter: ProductFilter) {
                     products(first: $first, filter: $filter, orderBy: {field: PRICE, direction: ASC}) { __typename
                       edges { __typename node { ...P } }
                       nodes { id sku slug description inStock updatedAt isPublished stock
                               price { __typename amount currency } reviews(first: 1) { edges { node { body } } } } }
                     more: products(last: 2) { nodes { n: name category { __typename id } } } }
                   fragment P on Product { __typename id n: name createdAt
                     category { id name parent { name } } reviews(first: 2) { nodes { rating } } }""",
                {"first": 5, "filter": {"maxPrice": "5.00"}},
                "Rows",
            ),
            COMPILED,
        ),
        (
            Case(
                "products beyond their rows",
                """{ a: products(first: 3) { totalCount nodes { id } }
                     b: products(first: 3) { pageInfo { hasNextPage endCursor } edges { cursor node { name } } }
                     c: products(first: 3) { nodes { name rating { average count } } } }""",
            ),
            COMPILED,
        ),
        (
            Case(
                "categories read from rows",
                """{ products(first: 6) { nodes { name category { __typename id name slug description }
                     cat: category { name parent { id name } } } }
                   categories { nodes { name parent { __typename id name slug } } } }""",
            ),
            COMPILED,
        ),
        (
            Case(
                "categories",
                """{ __typename categories(topLevelOnly: true) { totalCount nodes { __typename id name description
                     children { name parent { slug } } products(first: 3) { nodes { name category { name } } } } } }""",
            ),
            COMPILED,
        ),
        (
            Case("field error with path", "{ ok: products(first: 1) { nodes { id } } product(id: null) { id } }"),
            GRAPHQL_CORE,
        ),
        (
            Case(
                "nested field error, null propagation",
                """{ products(first: 2) { nodes { id reviews(first: -1) { nodes { id } } } } }""",
            ),
            GRAPHQL_CORE,
        ),
        (
            Case("error on a node", "query N($id: ID!) { node(id: $id) { id } }", {"id": "not-a-global-id"}),
            GRAPHQL_CORE,
        ),
        (Case("introspection", '{ __schema { queryType { name } } __type(name: "Product") { name } }'), GRAPHQL_CORE),
    ]
    # Who may see what differs by caller; these run compiled only when the caller may ask them.
    for name in ("OrderHistory",):
        cases.append((Case(name, EXAMPLES[name], {}, name), ""))
    cases.append((Case("me", "{ me { id name email roles orders(first: 2) { totalCount } } }"), ""))
    return cases


async def test_compiled_answers_as_graphql_core(
    app: FastAPI,
    client: AsyncClient,
    catalog: Catalog,
    callers: dict[str, Caller],
) -> None:
    settings: Settings = app.state.settings
    assert settings.graphql_compiled  # on by default
    compiled_runs = 0
    for case, expected_path in _cases(catalog):
        for caller_name, caller in callers.items():
            reference, compiled, served_compiled = await both_paths(app, client, caller, case)
            assert compiled == reference, f"{case.name} as {caller_name}"
            if expected_path:
                assert served_compiled == (expected_path == COMPILED), f"{case.name} as {caller_name}: {reference}"
            compiled_runs += served_compiled
    assert compiled_runs > 0
