from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from domains.products import models as products_models
from tests import factories
from tests.auth import Account, cast
from tests.graphql import error_codes, gql, post

PRODUCT_DELETE = """
mutation ($id: ID!) {
  productDelete(input: {productId: $id}) { deletedProductId userErrors { field code } }
}
"""
NODE = "query ($id: ID!) { node(id: $id) { id } }"


def _id(product: products_models.Product) -> str:
    return encode_global_id("Product", product.id)


async def _count(session: AsyncSession, model: type[products_models.Product | products_models.Review]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_product_delete_removes_the_product_and_its_reviews(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    product = await factories.create_product(db_session)
    await factories.create_product(db_session)  # another product, which stays
    review = await factories.create_review(db_session, product=product, author=await factories.create_user(db_session))
    await db_session.commit()

    # when
    payload = (await gql(client, PRODUCT_DELETE, {"id": _id(product)}, staff.headers))["productDelete"]
    product_after = await gql(client, NODE, {"id": _id(product)}, staff.headers)
    review_after = await gql(client, NODE, {"id": encode_global_id("Review", review.id)}, staff.headers)

    # then
    assert payload == {"deletedProductId": _id(product), "userErrors": []}
    assert product_after == review_after == {"node": None}
    assert await _count(db_session, products_models.Product) == 1
    assert await _count(db_session, products_models.Review) == 0
    assert await factories.recorded_events(db_session) == [("ProductDeleted", {"productId": _id(product)})]


async def test_product_delete_refuses_a_product_that_an_order_names(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    product = await factories.create_product(db_session)
    await factories.create_order(db_session, customer=await factories.create_user(db_session), product=product)
    await db_session.commit()

    # when
    payload = (await gql(client, PRODUCT_DELETE, {"id": _id(product)}, staff.headers))["productDelete"]

    # then
    assert payload == {
        "deletedProductId": None,
        "userErrors": [{"field": ["input", "productId"], "code": "REFERENCED"}],
    }
    assert await _count(db_session, products_models.Product) == 1
    assert await factories.recorded_events(db_session) == []


async def test_product_delete_answers_not_found_for_an_unknown_product(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    await db_session.commit()

    # when
    data = await gql(client, PRODUCT_DELETE, {"id": encode_global_id("Product", 424242)}, staff.headers)

    # then
    assert data["productDelete"]["userErrors"] == [{"field": ["input", "productId"], "code": "NOT_FOUND"}]


async def test_product_delete_is_for_staff_only(app: FastAPI, client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    product = await factories.create_product(db_session)
    people = await cast(app, db_session)

    # when
    anonymous = await post(client, PRODUCT_DELETE, {"id": _id(product)}, people.callers["anonymous"].headers)
    customer = await post(client, PRODUCT_DELETE, {"id": _id(product)}, people.callers["customer"].headers)
    admin = await post(client, PRODUCT_DELETE, {"id": _id(product)}, people.callers["admin"].headers)

    # then
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]
    assert error_codes(customer) == ["FORBIDDEN"]
    assert admin["data"]["productDelete"] == {"deletedProductId": _id(product), "userErrors": []}
