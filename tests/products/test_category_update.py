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

CATEGORY_UPDATE = """
mutation ($input: CategoryUpdateInput!) {
  categoryUpdate(input: $input) {
    category { id name slug description parent { name } }
    userErrors { field code }
  }
}
"""
# One request: the first field caches the parent in the request's loaders, the second renames it,
# the third must see the new name.
MOVE_RENAME_READ = """
mutation ($child: ID!, $parent: ID!) {
  moved: categoryUpdate(input: {categoryId: $child, parentId: $parent}) { category { parent { name } } }
  renamed: categoryUpdate(input: {categoryId: $parent, name: "Hot drinks"}) {
    category { name children { name } }
  }
  again: categoryUpdate(input: {categoryId: $child, description: "Steeped."}) {
    category { description parent { name } }
  }
}
"""


def _id(category: products_models.Category) -> str:
    return encode_global_id("Category", category.id)


async def _update(client: AsyncClient, caller: Caller, category: products_models.Category, **fields: Any) -> Any:
    data = await gql(client, CATEGORY_UPDATE, {"input": {"categoryId": _id(category)} | fields}, caller.headers)
    return data["categoryUpdate"]


async def test_category_update_changes_only_the_given_fields(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    root = await factories.create_category(db_session, name="Drinks")
    category = await factories.create_category(db_session, name="Tea", parent=root)
    await db_session.commit()

    # when
    payload = await _update(client, staff, category, name="Green tea", slug="green-tea")

    # then
    assert payload == {
        "category": {
            "id": _id(category),
            "name": "Green tea",
            "slug": "green-tea",
            "description": "",
            "parent": {"name": "Drinks"},
        },
        "userErrors": [],
    }
    assert await factories.recorded_events(db_session) == [("CategoryUpdated", {"categoryId": _id(category)})]


async def test_category_update_moves_to_the_top_level_on_a_null_parent(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    root = await factories.create_category(db_session)
    category = await factories.create_category(db_session, parent=root)
    await db_session.commit()

    # when
    payload = await _update(client, staff, category, parentId=None)

    # then
    assert payload["category"]["parent"] is None
    parent_id = await db_session.scalar(
        select(products_models.Category.parent_id).where(products_models.Category.id == category.id)
    )
    assert parent_id is None


async def test_category_update_payload_reflects_writes_made_earlier_in_the_request(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    parent = await factories.create_category(db_session, name="Drinks")
    child = await factories.create_category(db_session, name="Tea")
    await db_session.commit()

    # when
    data = await gql(client, MOVE_RENAME_READ, {"child": _id(child), "parent": _id(parent)}, staff.headers)

    # then
    assert data["moved"]["category"]["parent"] == {"name": "Drinks"}
    assert data["renamed"]["category"] == {"name": "Hot drinks", "children": [{"name": "Tea"}]}
    assert data["again"]["category"] == {"description": "Steeped.", "parent": {"name": "Hot drinks"}}


async def test_category_update_refuses_to_move_a_category_under_itself_or_its_descendants(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given: root > middle > leaf
    root = await factories.create_category(db_session)
    middle = await factories.create_category(db_session, parent=root)
    leaf = await factories.create_category(db_session, parent=middle)
    await db_session.commit()

    # when
    under_itself = await _update(client, staff, root, parentId=_id(root))
    under_grandchild = await _update(client, staff, root, parentId=_id(leaf))

    # then
    for payload in (under_itself, under_grandchild):
        assert payload == {"category": None, "userErrors": [{"field": ["input", "parentId"], "code": "INVALID"}]}


async def test_category_update_refuses_an_unknown_category_or_parent(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    category = await factories.create_category(db_session)
    await db_session.commit()
    unknown = encode_global_id("Category", category.id + 999)

    # when
    missing_target = await gql(client, CATEGORY_UPDATE, {"input": {"categoryId": unknown, "name": "X"}}, staff.headers)
    missing_parent = await _update(client, staff, category, parentId=unknown)

    # then
    assert missing_target["categoryUpdate"]["userErrors"] == [{"field": ["input", "categoryId"], "code": "NOT_FOUND"}]
    assert missing_parent["userErrors"] == [{"field": ["input", "parentId"], "code": "NOT_FOUND"}]


async def test_category_update_refuses_a_slug_another_category_has_but_keeps_its_own(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    category = await factories.create_category(db_session)
    other = await factories.create_category(db_session)
    await db_session.commit()

    # when
    taken = await _update(client, staff, category, slug=other.slug)
    own = await _update(client, staff, category, slug=category.slug, name="Same slug")

    # then
    assert taken["userErrors"] == [{"field": ["input", "slug"], "code": "ALREADY_EXISTS"}]
    assert own["userErrors"] == []


async def test_category_update_reports_every_problem_at_once(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    category = await factories.create_category(db_session, name="Tea")
    await db_session.commit()

    # when
    payload = await _update(client, staff, category, name="", slug="-tea-", description="d" * 5001)
    too_long = await _update(client, staff, category, name="n" * 121)

    # then
    assert payload["userErrors"] == [
        {"field": ["input", "name"], "code": "REQUIRED"},
        {"field": ["input", "slug"], "code": "INVALID"},
        {"field": ["input", "description"], "code": "TOO_LONG"},
    ]
    assert too_long["userErrors"] == [{"field": ["input", "name"], "code": "TOO_LONG"}]
    name = await db_session.scalar(
        select(products_models.Category.name).where(products_models.Category.id == category.id)
    )
    assert name == "Tea"


async def test_category_update_is_for_staff_only(app: FastAPI, client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    category = await factories.create_category(db_session)
    people = await cast(app, db_session)
    variables = {"input": {"categoryId": _id(category), "name": "Renamed"}}

    # when
    answers = {
        name: await post(client, CATEGORY_UPDATE, variables, caller.headers) for name, caller in people.callers.items()
    }

    # then
    assert error_codes(answers["anonymous"]) == ["UNAUTHENTICATED"]
    assert error_codes(answers["customer"]) == ["FORBIDDEN"]
    for allowed in ("staff", "admin", "admin_key_as_staff"):
        assert answers[allowed]["data"]["categoryUpdate"]["userErrors"] == [], allowed
