import asyncio

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from domains.products import models as products_models
from tests import factories
from tests.auth import Account, cast
from tests.graphql import error_codes, gql, post

PRODUCT_STOCK_ADJUST = """
mutation ($id: ID!, $delta: Int!) {
  productStockAdjust(input: {productId: $id, delta: $delta}) { product { stock inStock } userErrors { field code } }
}
"""
# One request: each field's payload must show the stock after its own change, not a cached one.
ADJUST_TWICE = """
mutation ($id: ID!) {
  added: productStockAdjust(input: {productId: $id, delta: 5}) { product { stock } }
  removed: productStockAdjust(input: {productId: $id, delta: -7}) { product { stock inStock } }
}
"""


def _id(product: products_models.Product) -> str:
    return encode_global_id("Product", product.id)


async def _stock(session: AsyncSession, product: products_models.Product) -> int | None:
    return await session.scalar(select(products_models.Product.stock).where(products_models.Product.id == product.id))


async def test_product_stock_adjust_adds_and_removes_units(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    product = await factories.create_product(db_session, stock=2)
    await db_session.commit()

    # when
    data = await gql(client, ADJUST_TWICE, {"id": _id(product)}, staff.headers)

    # then
    assert data == {"added": {"product": {"stock": 7}}, "removed": {"product": {"stock": 0, "inStock": False}}}
    assert await _stock(db_session, product) == 0
    assert await factories.recorded_events(db_session) == [
        ("ProductStockAdjusted", {"productId": _id(product), "delta": 5, "stock": 7}),
        ("ProductStockAdjusted", {"productId": _id(product), "delta": -7, "stock": 0}),
    ]


async def test_product_stock_adjust_refuses_to_go_below_zero(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    product = await factories.create_product(db_session, stock=3)
    await db_session.commit()

    # when
    data = await gql(client, PRODUCT_STOCK_ADJUST, {"id": _id(product), "delta": -4}, staff.headers)

    # then
    assert data["productStockAdjust"] == {
        "product": None,
        "userErrors": [{"field": ["input", "delta"], "code": "OUT_OF_STOCK"}],
    }
    assert await _stock(db_session, product) == 3
    assert await factories.recorded_events(db_session) == []


async def test_product_stock_adjust_refuses_to_pass_the_largest_stock(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    product = await factories.create_product(db_session, stock=2)
    await db_session.commit()

    # when
    data = await gql(client, PRODUCT_STOCK_ADJUST, {"id": _id(product), "delta": 2**31 - 2}, staff.headers)

    # then
    assert data["productStockAdjust"]["userErrors"] == [{"field": ["input", "delta"], "code": "INVALID"}]
    assert await _stock(db_session, product) == 2


async def test_product_stock_adjust_answers_not_found_for_an_unknown_product(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    await db_session.commit()

    # when
    data = await gql(
        client, PRODUCT_STOCK_ADJUST, {"id": encode_global_id("Product", 424242), "delta": 1}, staff.headers
    )

    # then
    assert data["productStockAdjust"]["userErrors"] == [{"field": ["input", "productId"], "code": "NOT_FOUND"}]


async def test_product_stock_adjust_never_oversells_under_concurrent_removals(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    product = await factories.create_product(db_session, stock=5)
    await db_session.commit()

    # when: eight concurrent requests each remove one unit
    answers = await asyncio.gather(
        *(gql(client, PRODUCT_STOCK_ADJUST, {"id": _id(product), "delta": -1}, staff.headers) for _ in range(8))
    )

    # then
    payloads = [answer["productStockAdjust"] for answer in answers]
    assert sum(payload["product"] is not None for payload in payloads) == 5
    assert [error["code"] for payload in payloads for error in payload["userErrors"]] == ["OUT_OF_STOCK"] * 3
    assert await _stock(db_session, product) == 0


async def test_product_stock_adjust_is_for_staff_only(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    product = await factories.create_product(db_session, stock=0)
    people = await cast(app, db_session)
    variables = {"id": _id(product), "delta": 1}

    # when
    answers = {
        name: await post(client, PRODUCT_STOCK_ADJUST, variables, caller.headers)
        for name, caller in people.callers.items()
    }

    # then
    assert error_codes(answers["anonymous"]) == ["UNAUTHENTICATED"]
    assert error_codes(answers["customer"]) == ["FORBIDDEN"]
    assert await _stock(db_session, product) == 3  # staff, admin and the admin's staff key
