from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from domains.products import models as products_models
from tests import factories
from tests.auth import Account, cast
from tests.graphql import error_codes, gql, post

CATEGORY_DELETE = """
mutation ($id: ID!) {
  categoryDelete(input: {categoryId: $id}) { deletedCategoryId userErrors { field code } }
}
"""
CATEGORY = "query ($id: ID!) { category(id: $id) { name } }"


def _id(category: products_models.Category) -> str:
    return encode_global_id("Category", category.id)


async def _categories(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(products_models.Category)) or 0)


async def test_category_delete_removes_an_unused_category(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    root = await factories.create_category(db_session, name="Drinks")
    leaf = await factories.create_category(db_session, parent=root)
    await db_session.commit()

    # when
    payload = (await gql(client, CATEGORY_DELETE, {"id": _id(leaf)}, staff.headers))["categoryDelete"]
    after = await gql(client, CATEGORY, {"id": _id(leaf)})

    # then
    assert payload == {"deletedCategoryId": _id(leaf), "userErrors": []}
    assert after == {"category": None}
    assert await _categories(db_session) == 1
    assert await factories.recorded_events(db_session) == [("CategoryDeleted", {"categoryId": _id(leaf)})]


async def test_category_delete_refuses_a_category_with_subcategories_or_products(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    with_child = await factories.create_category(db_session)
    await factories.create_category(db_session, parent=with_child)
    with_product = await factories.create_category(db_session)
    await factories.create_product(db_session, category=with_product)
    await db_session.commit()

    # when
    answers = [
        (await gql(client, CATEGORY_DELETE, {"id": _id(category)}, staff.headers))["categoryDelete"]
        for category in (with_child, with_product)
    ]

    # then
    for payload in answers:
        assert payload == {
            "deletedCategoryId": None,
            "userErrors": [{"field": ["input", "categoryId"], "code": "REFERENCED"}],
        }
    assert await _categories(db_session) == 3
    assert await factories.recorded_events(db_session) == []


async def test_category_delete_answers_not_found_for_an_unknown_category(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    await db_session.commit()

    # when
    data = await gql(client, CATEGORY_DELETE, {"id": encode_global_id("Category", 424242)}, staff.headers)

    # then
    assert data["categoryDelete"]["userErrors"] == [{"field": ["input", "categoryId"], "code": "NOT_FOUND"}]


async def test_category_delete_is_for_staff_only(app: FastAPI, client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    category = await factories.create_category(db_session)
    people = await cast(app, db_session)

    # when
    anonymous = await post(client, CATEGORY_DELETE, {"id": _id(category)}, people.callers["anonymous"].headers)
    customer = await post(client, CATEGORY_DELETE, {"id": _id(category)}, people.callers["customer"].headers)
    staff_key = await post(client, CATEGORY_DELETE, {"id": _id(category)}, people.callers["admin_key_as_staff"].headers)

    # then
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]
    assert error_codes(customer) == ["FORBIDDEN"]
    assert staff_key["data"]["categoryDelete"] == {"deletedCategoryId": _id(category), "userErrors": []}
