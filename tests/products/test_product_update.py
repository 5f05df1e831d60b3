from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from domains.products import models as products_models
from tests import factories
from tests.auth import Account, Caller, cast
from tests.graphql import error_codes, gql, post

PRODUCT_UPDATE = """
mutation ($input: ProductUpdateInput!) {
  productUpdate(input: $input) {
    product { sku name slug description price { amount } stock category { name } }
    userErrors { field code }
  }
}
"""
# One request: the first field caches the product (and its category) in the request's loaders;
# the second moves it to another category and must show that one.
MOVE_TWICE = """
mutation ($id: ID!, $first: ID!, $second: ID!) {
  first: productUpdate(input: {productId: $id, categoryId: $first}) { product { category { name } } }
  second: productUpdate(input: {productId: $id, categoryId: $second}) { product { category { name } } }
}
"""
PUBLIC_PRODUCT = "query ($id: ID!) { product(id: $id) { name } }"


def _id(product: products_models.Product) -> str:
    return encode_global_id("Product", product.id)


async def _update(client: AsyncClient, caller: Caller, product: products_models.Product, **fields: Any) -> Any:
    data = await gql(client, PRODUCT_UPDATE, {"input": {"productId": _id(product)} | fields}, caller.headers)
    return data["productUpdate"]


async def test_product_update_changes_only_the_given_fields(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    category = await factories.create_category(db_session, name="Tea")
    product = await factories.create_product(db_session, name="Sencha", price="4.50", stock=3, category=category)
    await db_session.commit()

    # when
    payload = await _update(client, staff, product, name="Gyokuro", price="12.00", description="Shaded.")

    # then
    assert payload == {
        "product": {
            "sku": product.sku,
            "name": "Gyokuro",
            "slug": product.slug,
            "description": "Shaded.",
            "price": {"amount": "12.00"},
            "stock": 3,
            "category": {"name": "Tea"},
        },
        "userErrors": [],
    }
    assert await factories.recorded_events(db_session) == [("ProductUpdated", {"productId": _id(product)})]


async def test_product_update_payload_reflects_writes_made_earlier_in_the_request(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    tea = await factories.create_category(db_session, name="Tea")
    coffee = await factories.create_category(db_session, name="Coffee")
    product = await factories.create_product(db_session)
    await db_session.commit()
    variables = {
        "id": _id(product),
        "first": encode_global_id("Category", tea.id),
        "second": encode_global_id("Category", coffee.id),
    }

    # when
    data = await gql(client, MOVE_TWICE, variables, staff.headers)

    # then
    assert data["first"]["product"]["category"] == {"name": "Tea"}
    assert data["second"]["product"]["category"] == {"name": "Coffee"}


async def test_product_update_uncategorises_on_a_null_category_and_unpublishes(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    product = await factories.create_product(db_session, category=await factories.create_category(db_session))
    await db_session.commit()

    # when
    payload = await _update(client, staff, product, categoryId=None, isPublished=False)
    seen_by_anonymous = await gql(client, PUBLIC_PRODUCT, {"id": _id(product)})

    # then
    assert payload["product"]["category"] is None
    assert seen_by_anonymous == {"product": None}


async def test_product_update_refuses_an_unknown_product_or_category(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    product = await factories.create_product(db_session)
    await db_session.commit()
    unknown_product = {"productId": encode_global_id("Product", product.id + 999), "name": "X"}

    # when
    missing_target = await gql(client, PRODUCT_UPDATE, {"input": unknown_product}, staff.headers)
    missing_category = await _update(client, staff, product, categoryId=encode_global_id("Category", 999_999))

    # then
    assert missing_target["productUpdate"]["userErrors"] == [{"field": ["input", "productId"], "code": "NOT_FOUND"}]
    assert missing_category["userErrors"] == [{"field": ["input", "categoryId"], "code": "NOT_FOUND"}]


async def test_product_update_refuses_a_sku_or_slug_another_product_has_but_keeps_its_own(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    product = await factories.create_product(db_session)
    other = await factories.create_product(db_session)
    await db_session.commit()

    # when
    taken = await _update(client, staff, product, sku=other.sku, slug=other.slug)
    own = await _update(client, staff, product, sku=product.sku, slug=product.slug)

    # then
    assert taken["userErrors"] == [
        {"field": ["input", "sku"], "code": "ALREADY_EXISTS"},
        {"field": ["input", "slug"], "code": "ALREADY_EXISTS"},
    ]
    assert own["userErrors"] == []


async def test_product_update_reports_every_problem_at_once_and_changes_nothing(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    product = await factories.create_product(db_session, name="Sencha")
    await db_session.commit()

    # when
    payload = await _update(client, staff, product, sku="", name="n" * 121, slug="UPPER", price="1.001")

    # then
    assert payload["product"] is None
    assert payload["userErrors"] == [
        {"field": ["input", "sku"], "code": "REQUIRED"},
        {"field": ["input", "name"], "code": "TOO_LONG"},
        {"field": ["input", "slug"], "code": "INVALID"},
        {"field": ["input", "price"], "code": "INVALID"},
    ]
    name = await db_session.scalar(select(products_models.Product.name).where(products_models.Product.id == product.id))
    assert name == "Sencha"


async def test_product_update_is_for_staff_only(app: FastAPI, client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    product = await factories.create_product(db_session)
    people = await cast(app, db_session)
    variables = {"input": {"productId": _id(product), "name": "Renamed"}}

    # when
    answers = {
        name: await post(client, PRODUCT_UPDATE, variables, caller.headers) for name, caller in people.callers.items()
    }

    # then
    assert error_codes(answers["anonymous"]) == ["UNAUTHENTICATED"]
    assert error_codes(answers["customer"]) == ["FORBIDDEN"]
    for allowed in ("staff", "admin", "admin_key_as_staff"):
        assert answers[allowed]["data"]["productUpdate"]["userErrors"] == [], allowed
