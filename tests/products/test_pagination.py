import base64
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from domains.products import repository
from tests.factories import create_product, create_review, create_user
from tests.graphql import count_statements, error_codes, gql, post

PAGE = """
query ($order: ProductOrder, $first: Int, $after: String, $last: Int, $before: String) {
  products(orderBy: $order, first: $first, after: $after, last: $last, before: $before) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id name createdAt price { amount } rating { average } } }
  }
}
"""
FIELDS = ["CREATED_AT", "PRICE", "NAME", "RATING"]
PAGE_SIZE = 3
# Prices and ratings repeat on purpose: the id tie-breaker must keep every page exact.
PRICES = ["5.00", "7.50", "5.00", "9.99", "7.50", "5.00", "12.00", "9.99", "1.00", "7.50"]
NAMES = ["Kettle", "Anvil", "Lamp", "anchor", "Zebra", "Kettle", "Mug", "Bowl", "Anvil", "Quilt"]
RATINGS = [[5], [3, 4], [], [5], [4, 3], [1], [], [2, 5], [5], [3]]


def _sort_key(field: str, node: dict[str, Any]) -> Any:
    if field == "CREATED_AT":
        return datetime.fromisoformat(node["createdAt"])
    if field == "PRICE":
        return Decimal(node["price"]["amount"])
    if field == "NAME":
        return node["name"]
    return Decimal(str(node["rating"]["average"] or 0))


def _pk(node: dict[str, Any]) -> int:
    return int(base64.b64decode(node["id"]).decode().split(":")[1])


def _expected(field: str, direction: str, nodes: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(nodes, key=lambda n: (_sort_key(field, n), _pk(n)), reverse=direction == "DESC")
    return [n["id"] for n in ordered]


async def _catalog(session: AsyncSession) -> None:
    reviewers = [await create_user(session) for _ in range(2)]
    for price, name, ratings in zip(PRICES, NAMES, RATINGS, strict=True):
        product = await create_product(session, price=price, name=name)
        for reviewer, rating in zip(reviewers, ratings, strict=False):
            await create_review(session, product=product, author=reviewer, rating=rating)
    await session.commit()


async def _walk(
    client: AsyncClient, order: dict[str, str], *, backward: bool, session: AsyncSession
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    inserted = False
    while True:
        variables: dict[str, Any] = {"order": order}
        variables.update({"last": PAGE_SIZE, "before": cursor} if backward else {"first": PAGE_SIZE, "after": cursor})
        connection = (await gql(client, PAGE, variables))["products"]
        nodes = [edge["node"] for edge in connection["edges"]]
        seen = nodes + seen if backward else seen + nodes
        info = connection["pageInfo"]
        if not inserted:
            # Rows inserted between two requests must neither repeat nor skip a row.
            await create_product(session, price="6.00", name="Inserted Early")
            await create_product(session, price="999.00", name="zzz Inserted Late")
            await session.commit()
            inserted = True
        more = info["hasPreviousPage"] if backward else info["hasNextPage"]
        if not more:
            return seen
        cursor = info["startCursor"] if backward else info["endCursor"]


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
async def test_walking_every_ordering_returns_each_product_once_in_order(
    client: AsyncClient, db_session: AsyncSession, field: str, direction: str, backward: bool
) -> None:
    # given
    await _catalog(db_session)
    order = {"field": field, "direction": direction}
    originals = (await gql(client, PAGE, {"order": order, "first": 100}))["products"]["edges"]
    original_ids = [edge["node"]["id"] for edge in originals]

    # when
    seen = await _walk(client, order, backward=backward, session=db_session)

    # then
    seen_ids = [node["id"] for node in seen]
    assert len(seen_ids) == len(set(seen_ids)), "a product was returned twice"
    assert [i for i in seen_ids if i in original_ids] == original_ids
    assert seen_ids == _expected(field, direction, seen)
    assert original_ids == _expected(field, direction, [edge["node"] for edge in originals])


async def test_page_info_and_cursors_describe_the_page(client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    await _catalog(db_session)

    # when
    first = (await gql(client, PAGE, {"first": 4}))["products"]
    second = (await gql(client, PAGE, {"first": 4, "after": first["pageInfo"]["endCursor"]}))["products"]

    # then
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["pageInfo"]["hasPreviousPage"] is False
    assert first["pageInfo"]["startCursor"] == first["edges"][0]["cursor"]
    assert first["pageInfo"]["endCursor"] == first["edges"][-1]["cursor"]
    assert second["pageInfo"]["hasPreviousPage"] is True
    assert {e["node"]["id"] for e in first["edges"]}.isdisjoint({e["node"]["id"] for e in second["edges"]})


async def test_default_page_is_20_and_zero_is_an_empty_page(client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    for _ in range(21):
        await create_product(db_session)
    await db_session.commit()

    # when
    default = (await gql(client, PAGE, {}))["products"]
    empty = (await gql(client, PAGE, {"first": 0}))["products"]

    # then
    assert len(default["edges"]) == 20
    assert default["pageInfo"]["hasNextPage"] is True
    assert empty["edges"] == []
    assert empty["pageInfo"]["endCursor"] is None


def _cursor(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).decode()


@pytest.mark.parametrize(
    "variables",
    [
        {"first": 1, "last": 1},
        {"first": -1},
        {"last": -5},
        {"first": 101},
        {"last": 101},
        {"after": "garbage!!"},
        {"before": _cursor(b"not json")},
        {"after": _cursor(b'["PRICE:ASC", "1.00", 3]')},  # made for another ordering
        {"after": _cursor(b'["CREATED_AT:DESC", "yesterday", 3]')},
        {"after": _cursor(b'["CREATED_AT:DESC", "2026-01-01T00:00:00+00:00", "3"]')},
        {"after": _cursor(b'["CREATED_AT:DESC", "2026-01-01T00:00:00", 3]')},  # no UTC offset
        {"after": _cursor(b'["CREATED_AT:DESC", "2026-01-01T00:00:00+00:00"]')},
    ],
)
async def test_bad_pagination_arguments_are_bad_user_input(client: AsyncClient, variables: dict[str, Any]) -> None:
    # when
    body = await post(client, PAGE, variables)

    # then: page sizes are refused before execution (no data at all), cursors by the resolver (data null)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body.get("data") is None


async def test_nested_connections_have_their_page_size_checked_before_execution(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    product = await create_product(db_session)
    await db_session.commit()
    query = "query ($id: ID!) { node(id: $id) { ... on Product { reviews(first: 500) { totalCount } } } }"

    # when
    body = await post(client, query, {"id": encode_global_id("Product", product.id)})

    # then: refused with the place of the field in the document, before any field resolved
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "`reviews`" in body["errors"][0]["message"]
    assert body["errors"][0]["locations"] == [{"line": 1, "column": query.index("reviews") + 1}]
    assert "path" not in body["errors"][0]


async def test_reviews_page_per_product_by_rating_and_backwards(client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    product = await create_product(db_session)
    for rating in [3, 5, 1, 5, 4]:
        await create_review(db_session, product=product, author=await create_user(db_session), rating=rating)
    await db_session.commit()
    query = """query ($id: ID!, $after: String) { node(id: $id) { ... on Product {
        reviews(first: 2, after: $after, orderBy: {field: RATING, direction: DESC}) {
          totalCount pageInfo { hasNextPage endCursor } nodes { rating } } } } }"""
    back = """query ($id: ID!) { node(id: $id) { ... on Product {
        reviews(last: 2, orderBy: {field: RATING, direction: ASC}) {
          pageInfo { hasPreviousPage } nodes { rating } } } } }"""
    gid = encode_global_id("Product", product.id)

    # when
    first = (await gql(client, query, {"id": gid}))["node"]["reviews"]
    second = (await gql(client, query, {"id": gid, "after": first["pageInfo"]["endCursor"]}))["node"]["reviews"]
    last = (await gql(client, back, {"id": gid}))["node"]["reviews"]

    # then
    assert first["totalCount"] == 5
    assert [n["rating"] for n in first["nodes"] + second["nodes"]] == [5, 5, 4, 3]
    assert second["pageInfo"]["hasNextPage"] is True
    assert last == {"pageInfo": {"hasPreviousPage": True}, "nodes": [{"rating": 5}, {"rating": 5}]}


async def test_review_pages_of_one_shape_take_each_page_own_cursor(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: five reviews, walked one per page, so every page after the first has the same shape
    product = await create_product(db_session)
    for rating in [2, 4, 1, 5, 3]:
        await create_review(db_session, product=product, author=await create_user(db_session), rating=rating)
    await db_session.commit()
    query = """query ($id: ID!, $after: String) { node(id: $id) { ... on Product {
        reviews(first: 1, after: $after, orderBy: {field: RATING, direction: ASC}) {
          pageInfo { hasNextPage endCursor } nodes { rating } } } } }"""
    gid = encode_global_id("Product", product.id)

    # when
    ratings: list[int] = []
    cursor: str | None = None
    while True:
        reviews = (await gql(client, query, {"id": gid, "after": cursor}))["node"]["reviews"]
        ratings += [node["rating"] for node in reviews["nodes"]]
        if not reviews["pageInfo"]["hasNextPage"]:
            break
        cursor = reviews["pageInfo"]["endCursor"]

    # then
    assert ratings == [1, 2, 3, 4, 5]


async def test_product_pages_of_one_shape_take_each_request_own_size_bounds_and_filter_values(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: five products; every request below has the same filters, ordering and page shape
    for price in ["10.00", "20.00", "30.00", "40.00", "50.00"]:
        await create_product(db_session, price=price)
    await db_session.commit()
    query = """query ($n: Int, $after: String, $max: Decimal) {
        products(first: $n, after: $after, filter: {maxPrice: $max}, orderBy: {field: PRICE}) {
          pageInfo { hasNextPage endCursor } nodes { price { amount } } } }"""

    async def amounts(n: int, maximum: str, after: str | None = None) -> tuple[list[str], dict[str, Any]]:
        products = (await gql(client, query, {"n": n, "max": maximum, "after": after}))["products"]
        return [node["price"]["amount"] for node in products["nodes"]], products["pageInfo"]

    # when
    two, two_info = await amounts(2, "50.00")
    three, three_info = await amounts(3, "50.00")
    cheaper, cheaper_info = await amounts(3, "20.00")
    next_two, next_info = await amounts(2, "40.00", two_info["endCursor"])
    last, last_info = await amounts(2, "40.00", next_info["endCursor"])

    # then
    assert (two, two_info["hasNextPage"]) == (["10.00", "20.00"], True)
    assert (three, three_info["hasNextPage"]) == (["10.00", "20.00", "30.00"], True)
    assert (cheaper, cheaper_info["hasNextPage"]) == (["10.00", "20.00"], False)
    assert (next_two, next_info["hasNextPage"]) == (["30.00", "40.00"], False)
    assert (last, last_info["hasNextPage"]) == ([], False)


async def test_product_page_statements_are_kept_in_a_bounded_lru(
    client: AsyncClient, db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: room for two statements
    await create_product(db_session, name="Lamp")
    await db_session.commit()
    monkeypatch.setattr(repository, "PRODUCT_PAGE_STATEMENTS", 2)
    monkeypatch.setattr(repository, "_PRODUCT_PAGES", OrderedDict())
    query = "query ($o: ProductOrder) { products(orderBy: $o) { nodes { name } } }"

    # when: three orderings, the first used again before the third
    answers = [await gql(client, query, {"o": {"field": field}}) for field in ["NAME", "PRICE", "NAME", "RATING"]]

    # then: every answer is right, and the least recently used statement (PRICE) was dropped
    assert all(answer["products"]["nodes"] == [{"name": "Lamp"}] for answer in answers)
    assert [key[3].key.tag for key in repository._PRODUCT_PAGES] == ["NAME", "RATING"]


BATCHED = """query ($first: Int, $after: String, $last: Int, $before: String, $order: ReviewOrder) {
  products(first: 10) { nodes { id reviews(first: $first, after: $after, last: $last, before: $before,
    orderBy: $order) { pageInfo { hasNextPage hasPreviousPage endCursor } nodes { id rating createdAt } } } } }"""
ALONE = """query ($id: ID!, $first: Int, $after: String, $last: Int, $before: String, $order: ReviewOrder) {
  node(id: $id) { ... on Product { reviews(first: $first, after: $after, last: $last, before: $before,
    orderBy: $order) { pageInfo { hasNextPage hasPreviousPage endCursor } nodes { id rating createdAt } } } } }"""


async def test_review_pages_of_many_products_in_one_statement_are_each_products_own_pages(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: three products with reviews of repeated ratings and dates (the id breaks every tie)
    products = [await create_product(db_session) for _ in range(3)]
    day = datetime(2026, 3, 1, tzinfo=UTC)
    for n, product in enumerate(products):
        for m, rating in enumerate([4, 2, 4, 5, 1][: n + 3]):
            author = await create_user(db_session)
            when = day + timedelta(days=m % 2)
            await create_review(db_session, product=product, author=author, rating=rating, created_at=when)
    await db_session.commit()
    first_page = {"first": 2, "order": {"field": "RATING", "direction": "DESC"}}
    alone = await gql(client, ALONE, {"id": encode_global_id("Product", products[2].id), **first_page})
    cursor = alone["node"]["reviews"]["pageInfo"]["endCursor"]  # a position; every product has rows past it
    pages = [
        first_page,
        {**first_page, "after": cursor},
        {"last": 2, "order": {"field": "RATING", "direction": "DESC"}, "before": cursor},
        {"first": 3, "order": {"field": "CREATED_AT", "direction": "ASC"}},
        {"last": 2},
    ]

    for page in pages:
        # when: every product's page in one statement, and each product's page asked alone
        with count_statements(app) as statements:
            batched = await gql(client, BATCHED, page)
        by_product = {node["id"]: node["reviews"] for node in batched["products"]["nodes"]}
        # then
        assert len(statements) == 2, statements  # the products, then all their pages
        # PostgreSQL reads each product's page by itself (LATERAL); SQLite numbers every row (a window)
        assert ("JOIN LATERAL" in statements[1]) == (app.state.engine.dialect.name == "postgresql")
        assert len(by_product) == 3
        for product in products:
            gid = encode_global_id("Product", product.id)
            own = (await gql(client, ALONE, {"id": gid, **page}))["node"]["reviews"]
            assert by_product[gid] == own, (page, gid)
        assert any(reviews["nodes"] for reviews in by_product.values())
