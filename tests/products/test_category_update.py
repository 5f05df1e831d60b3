import asyncio
import contextlib
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.db import create_engine, create_sessionmaker
from api.settings import Settings
from domains.common.exceptions import DomainError
from domains.common.ids import encode_global_id
from domains.common.principal import Principal, Role
from domains.products import models as products_models
from domains.products import service as products_service
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


# How long a move that has written holds its commit for the other move to write too. The other
# either writes within it (a race: both commit) or waits on this one (serialised: it commits alone).
HOLD_SECONDS = 0.5


async def _move(
    sessions: async_sessionmaker[AsyncSession], principal: Principal, barrier: asyncio.Barrier, child: int, parent: int
) -> DomainError | None:
    async with sessions() as session:
        try:
            move = products_service.CategoryUpdate(category_id=child, parent_id=parent)
            await products_service.update_category(session, principal, input=move)
        except DomainError as exc:
            await session.rollback()
            return exc
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(barrier.wait(), HOLD_SECONDS)
        await session.commit()
    return None


async def _parents(session: AsyncSession, *categories: products_models.Category) -> dict[int, int | None]:
    stmt = select(products_models.Category.id, products_models.Category.parent_id).where(
        products_models.Category.id.in_([category.id for category in categories])
    )
    parents = dict((await session.execute(stmt)).all())
    await session.commit()  # ends the read, so the next one sees later commits (SQLite keeps a snapshot)
    return parents


async def test_category_update_two_concurrent_moves_under_each_other_never_form_a_cycle(
    settings: Settings, db_session: AsyncSession
) -> None:
    # given: two top-level categories and a member of staff
    a = await factories.create_category(db_session)
    b = await factories.create_category(db_session)
    staff = await factories.create_user(db_session, roles=("STAFF",))
    await db_session.commit()
    principal = Principal(user_id=staff.id, roles=frozenset({Role.STAFF}))
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    try:
        for _ in range(3):
            # when: two transactions move A under B and B under A at once, each holding its commit
            # until the other has written too (or is waiting on it)
            barrier = asyncio.Barrier(2)
            outcomes = await asyncio.gather(
                _move(sessions, principal, barrier, a.id, b.id), _move(sessions, principal, barrier, b.id, a.id)
            )

            # then: one move is made, the other is refused on parentId, and the tree has no cycle
            refused = [outcome for outcome in outcomes if outcome is not None]
            assert len(refused) == 1, outcomes
            assert [(p.code, p.field) for p in refused[0].problems] == [("INVALID", ("input", "parentId"))]
            parents = await _parents(db_session, a, b)
            assert parents in ({a.id: b.id, b.id: None}, {a.id: None, b.id: a.id}), parents
            await db_session.execute(update(products_models.Category).values(parent_id=None))
            await db_session.commit()
    finally:
        await engine.dispose()
