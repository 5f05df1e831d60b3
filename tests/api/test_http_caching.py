"""HTTP caching of GET queries: Cache-Control from the schema's @cacheControl hints, Vary, ETag and 304."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from graphql import parse
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.settings import Settings
from schema import build_schema
from schema.cache_control import CATEGORY_MAX_AGE, PRODUCT_MAX_AGE
from schema.extensions.cache_control import CachePolicy, operation_policy
from tests.auth import Account
from tests.factories import create_category, create_product, create_review, create_user
from tests.graphql import error_codes

PREFLIGHT = {"Apollo-Require-Preflight": "true"}  # what a GET needs against CSRF (api/http.py)
NOT_STORED = "private, no-store"
CATEGORIES = "{ categories { nodes { name slug children { name } } pageInfo { hasNextPage } totalCount } }"
CATEGORY_PRODUCTS = """
query CategoryPage { categories(first: 5) { nodes { ...Category } } }
fragment Category on Category { name products(first: 5) { edges { cursor node { name price { amount } } } } }
"""
PRODUCTS = "{ products(first: 5) { nodes { name price { amount currency } rating { average count } } } }"
PRODUCT_REVIEWS = '{ product(slug: "x") { name reviews { nodes { rating title author { name } } } } }'
MY_ACCOUNT = "{ me { name } }"
STOCK = "{ products(first: 5) { nodes { name stock } } }"
ANY_NODE = '{ node(id: "UHJvZHVjdDox") { id ... on Product { name } } }'
SCHEMA = build_schema()._schema


async def _get(client: AsyncClient, query: str, headers: dict[str, str] | None = None) -> Response:
    return await client.get("/graphql", params={"query": query}, headers={**PREFLIGHT, **(headers or {})})


def _vary(response: Response) -> list[str]:
    return [item.strip() for item in response.headers.get("vary", "").split(",") if item.strip()]


@pytest.fixture
async def catalog(db_session: AsyncSession) -> None:
    parent = await create_category(db_session, name="Shoes")
    child = await create_category(db_session, name="Boots", parent=parent)
    product = await create_product(db_session, name="Hiking boot", category=child)
    await create_product(db_session, name="Hidden", published=False, category=child)
    await create_review(db_session, product=product, author=await create_user(db_session, name="Rita"))
    await db_session.commit()


@pytest.fixture
def make_client(settings: Settings) -> Callable[..., AbstractAsyncContextManager[AsyncClient]]:
    @asynccontextmanager
    async def running(**overrides: Any) -> AsyncIterator[AsyncClient]:
        application = create_app(settings.model_copy(update=overrides))
        async with LifespanManager(application):
            transport = ASGITransport(app=application)
            async with AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield http

    return running


@pytest.fixture(params=["bearer", "api-key"])
def caller(request: pytest.FixtureRequest, customer: Account, staff_api_key: Account) -> Account:
    """A caller with credentials: a customer's bearer token, or a staff API key."""
    return customer if request.param == "bearer" else staff_api_key


class TestCacheControl:
    @pytest.mark.parametrize(
        ("query", "max_age"),
        [(CATEGORIES, CATEGORY_MAX_AGE), (CATEGORY_PRODUCTS, PRODUCT_MAX_AGE), (PRODUCTS, PRODUCT_MAX_AGE)],
        ids=["categories", "products-of-categories-by-fragment", "products"],
    )
    @pytest.mark.usefixtures("catalog")
    async def test_an_anonymous_catalog_query_is_public_for_the_smallest_max_age_it_selects(
        self, client: AsyncClient, query: str, max_age: int
    ) -> None:
        # when
        response = await _get(client, query)

        # then
        assert response.status_code == 200
        assert not response.json().get("errors")
        assert "boot" in response.text.lower()
        assert response.headers["cache-control"] == f"public, max-age={max_age}"

    @pytest.mark.parametrize(
        "query",
        [MY_ACCOUNT, STOCK, ANY_NODE, "{ products { nodes { reviews { nodes { author { email } } } } } }"],
        ids=["me", "product-stock", "node-of-any-type", "user-email"],
    )
    @pytest.mark.usefixtures("catalog")
    async def test_a_query_selecting_a_viewer_dependent_field_is_never_stored(
        self, client: AsyncClient, query: str
    ) -> None:
        # when
        response = await _get(client, query)

        # then: the answer is fine, but it is nobody's to share
        assert response.status_code == 200
        assert not response.json().get("errors")
        assert response.headers["cache-control"] == NOT_STORED
        assert isinstance(response.json()["extensions"]["cost"]["remaining"], int)

    @pytest.mark.usefixtures("catalog")
    async def test_a_request_with_credentials_is_never_stored(self, client: AsyncClient, caller: Account) -> None:
        # when
        response = await _get(client, CATEGORIES, caller.headers)

        # then
        assert response.status_code == 200
        assert response.headers["cache-control"] == NOT_STORED
        assert isinstance(response.json()["extensions"]["cost"]["remaining"], int)
        assert {"Authorization", "X-API-Key"} <= set(_vary(response))

    @pytest.mark.usefixtures("catalog")
    async def test_a_post_is_never_stored_and_has_no_etag(self, client: AsyncClient) -> None:
        # when
        response = await client.post("/graphql", json={"query": CATEGORIES})

        # then
        assert response.status_code == 200
        assert response.headers["cache-control"] == NOT_STORED
        assert "etag" not in response.headers

    @pytest.mark.parametrize(
        ("params", "accept", "status", "code"),
        [
            ({"query": '{ product(slug: "a", id: "b") { name } }'}, "application/json", 200, "BAD_USER_INPUT"),
            ({"query": "{ nope }"}, "application/graphql-response+json", 400, "GRAPHQL_VALIDATION_FAILED"),
            ({"query": 'mutation { tokenRevoke(input: {refreshToken: "x"}) { revoked } }'}, "*/*", 405, None),
            ({"query": "{ categories { nodes { name } } }", "variables": "{"}, "application/json", 400, None),
        ],
        ids=["field-error", "validation-error", "mutation-over-get", "bad-variables"],
    )
    async def test_an_answer_with_errors_or_a_refusal_is_never_stored(
        self, client: AsyncClient, params: dict[str, str], accept: str, status: int, code: str | None
    ) -> None:
        # when
        response = await client.get("/graphql", params=params, headers={**PREFLIGHT, "Accept": accept})

        # then
        assert response.status_code == status
        assert response.json()["errors"]
        if code is not None:
            assert error_codes(response.json()) == [code]
        assert response.headers["cache-control"] == NOT_STORED
        if status != 200:
            assert "etag" not in response.headers
        assert "Accept" in _vary(response)

    async def test_a_query_refused_by_the_cost_budget_is_never_stored(
        self, make_client: Callable[..., AbstractAsyncContextManager[AsyncClient]]
    ) -> None:
        # given: the first page of categories costs 21 points, more than the whole budget
        async with make_client(cost_budget="10/minute") as http:
            # when
            response = await _get(http, CATEGORIES)

        # then
        assert response.status_code == 429
        assert error_codes(response.json()) == ["RATE_LIMITED"]
        assert response.headers["cache-control"] == NOT_STORED
        assert "etag" not in response.headers

    async def test_every_answer_varies_on_the_media_type_and_the_credentials_and_origin_once(
        self, client: AsyncClient
    ) -> None:
        # when: CORS is on in development (the local frontends), so its middleware adds Origin
        public = await _get(client, CATEGORIES)
        posted = await client.post("/graphql", json={"query": CATEGORIES}, headers={"Origin": "http://localhost:3000"})

        # then
        for response in (public, posted):
            vary = _vary(response)
            assert sorted(vary) == sorted(["Accept", "Authorization", "X-API-Key", "Origin"])


class TestConditionalGet:
    @pytest.mark.usefixtures("catalog")
    async def test_the_etag_is_strong_stable_and_a_match_gets_304_without_a_body(self, client: AsyncClient) -> None:
        # given
        first = await _get(client, CATEGORY_PRODUCTS)
        second = await _get(client, CATEGORY_PRODUCTS)
        etag = first.headers["etag"]

        # when
        revalidated = await _get(client, CATEGORY_PRODUCTS, {"If-None-Match": etag})

        # then: the same bytes every time (no per-client figures in the body), so the same strong tag
        assert etag.startswith('"')
        assert etag.endswith('"')
        assert first.content == second.content
        assert second.headers["etag"] == etag
        assert revalidated.status_code == 304
        assert revalidated.content == b""
        assert revalidated.headers["etag"] == etag
        assert revalidated.headers["cache-control"] == f"public, max-age={PRODUCT_MAX_AGE}"
        assert "Accept" in _vary(revalidated)
        assert "content-type" not in revalidated.headers

    @pytest.mark.parametrize(
        ("if_none_match", "status"),
        [("W/{etag}", 304), ('"elsewhere", {etag}', 304), ("*", 304), ('"elsewhere"', 200), ("W/", 200)],
        ids=["weak-form", "in-a-list", "star", "another-tag", "malformed"],
    )
    @pytest.mark.usefixtures("catalog")
    async def test_if_none_match_compares_weakly_and_takes_lists_and_star(
        self, client: AsyncClient, if_none_match: str, status: int
    ) -> None:
        # given
        etag = (await _get(client, CATEGORIES)).headers["etag"]

        # when
        response = await _get(client, CATEGORIES, {"If-None-Match": if_none_match.format(etag=etag)})

        # then
        assert response.status_code == status
        assert response.headers["etag"] == etag
        if status == 200:
            assert response.json()["data"]["categories"]["nodes"]

    @pytest.mark.usefixtures("catalog")
    async def test_each_negotiated_media_type_has_its_own_etag(self, client: AsyncClient) -> None:
        # when
        plain = await _get(client, CATEGORIES, {"Accept": "application/json"})
        graphql = await _get(client, CATEGORIES, {"Accept": "application/graphql-response+json"})

        # then
        assert plain.content == graphql.content
        assert plain.headers["etag"] != graphql.headers["etag"]


class TestCostReport:
    @pytest.mark.usefixtures("catalog")
    async def test_a_public_answer_keeps_the_client_s_budget_in_the_headers_only(self, client: AsyncClient) -> None:
        # when
        response = await _get(client, CATEGORIES)

        # then
        cost = response.json()["extensions"]["cost"]
        assert cost == {"requested": cost["requested"], "remaining": None, "resetAt": None}
        assert cost["requested"] > 0
        assert int(response.headers["RateLimit-Remaining"]) == 20_000 - cost["requested"]
        assert int(response.headers["RateLimit-Reset"]) >= 0

    @pytest.mark.usefixtures("catalog")
    async def test_a_private_answer_reports_the_client_s_figures_in_the_body(self, client: AsyncClient) -> None:
        # when
        response = await _get(client, STOCK)

        # then
        cost = response.json()["extensions"]["cost"]
        assert cost["remaining"] == int(response.headers["RateLimit-Remaining"])
        assert cost["resetAt"] is not None


class TestStaticPolicy:
    @pytest.mark.parametrize(
        ("document", "shared_max_age"),
        [
            (CATEGORIES, CATEGORY_MAX_AGE),
            (CATEGORY_PRODUCTS, PRODUCT_MAX_AGE),
            ('{ category(slug: "x") { name } }', CATEGORY_MAX_AGE),
            (PRODUCT_REVIEWS, PRODUCT_MAX_AGE),
            (
                '{ category(slug: "x") { products { nodes { reviews { nodes { title } } } } } }',
                PRODUCT_MAX_AGE,
            ),
            ('{ product(slug: "x") { reviews { totalCount } } }', PRODUCT_MAX_AGE),
            ('{ category(slug: "x") { parent { name } } }', CATEGORY_MAX_AGE),
            ("{ products { nodes { ... on Node { id } } } }", PRODUCT_MAX_AGE),
            ("{ products { nodes { name stock @skip(if: true) } } }", None),
            (ANY_NODE, None),
            (MY_ACCOUNT, None),
            ("{ __typename }", None),
            ("{ __schema { queryType { name } } }", None),
        ],
        ids=[
            "categories",
            "category-products",
            "category",
            "product-reviews-authors",
            "nested-reviews",
            "review-count",
            "parent-category",
            "fragment-on-interface",
            "skip-is-ignored",
            "node-is-every-type",
            "me",
            "typename-only",
            "introspection",
        ],
    )
    def test_the_policy_is_the_smallest_max_age_and_private_wins(
        self, document: str, shared_max_age: int | None
    ) -> None:
        # when
        policy = operation_policy(SCHEMA, parse(document), None)

        # then
        assert policy.shared_max_age == shared_max_age

    def test_the_operation_named_is_the_one_measured(self) -> None:
        # given
        document = parse(f"query Public {CATEGORIES} query Mine {MY_ACCOUNT}")

        # when
        public, mine = (operation_policy(SCHEMA, document, name) for name in ("Public", "Mine"))

        # then
        assert public == CachePolicy(CATEGORY_MAX_AGE)
        assert mine.private
