import asyncio
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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

CATEGORY_CREATE = """
mutation ($input: CategoryCreateInput!) {
  categoryCreate(input: $input) {
    category { id name slug description parent { name } }
    userErrors { field code message }
  }
}
"""


async def _create(client: AsyncClient, caller: Caller, **fields: Any) -> dict[str, Any]:
    data = await gql(client, CATEGORY_CREATE, {"input": {"name": "Tea", "slug": "tea"} | fields}, caller.headers)
    payload: dict[str, Any] = data["categoryCreate"]
    return payload


def _codes(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(error["code"], error["field"]) for error in payload["userErrors"]]


async def test_category_create_adds_a_subcategory_and_records_the_event(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    parent = await factories.create_category(db_session, name="Drinks")
    await db_session.commit()

    # when
    payload = await _create(
        client,
        staff,
        name="  Green tea ",
        slug="green-tea",
        description="Leaves.",
        parentId=encode_global_id("Category", parent.id),
    )

    # then
    category = payload["category"]
    assert payload["userErrors"] == []
    assert (category["name"], category["slug"], category["description"]) == ("Green tea", "green-tea", "Leaves.")
    assert category["parent"] == {"name": "Drinks"}
    stored = (
        await db_session.execute(select(products_models.Category).where(products_models.Category.slug == "green-tea"))
    ).scalar_one()
    assert stored.parent_id == parent.id
    assert await factories.recorded_events(db_session) == [("CategoryCreated", {"categoryId": category["id"]})]


async def test_category_create_reports_every_problem_at_once(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    await db_session.commit()

    # when
    payload = await _create(
        client,
        staff,
        name="   ",
        slug="Green Tea",
        description="d" * 5001,
        parentId=encode_global_id("Category", 999_999),
    )

    # then
    assert payload["category"] is None
    assert _codes(payload) == [
        ("REQUIRED", ["input", "name"]),
        ("INVALID", ["input", "slug"]),
        ("TOO_LONG", ["input", "description"]),
        ("NOT_FOUND", ["input", "parentId"]),
    ]
    assert await factories.recorded_events(db_session) == []


async def test_category_create_refuses_names_and_slugs_over_120_characters(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    await db_session.commit()

    # when
    payload = await _create(client, staff, name="n" * 121, slug="s" * 121)

    # then
    assert _codes(payload) == [("TOO_LONG", ["input", "name"]), ("TOO_LONG", ["input", "slug"])]


async def test_category_create_refuses_a_taken_slug(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    existing = await factories.create_category(db_session)
    await db_session.commit()

    # when
    payload = await _create(client, staff, slug=existing.slug)

    # then
    assert payload["category"] is None
    assert _codes(payload) == [("ALREADY_EXISTS", ["input", "slug"])]


async def _create_in(session: AsyncSession, principal: Principal, slug: str) -> DomainError | None:
    try:
        await products_service.create_category(
            session, principal, input=products_service.CategoryCreate(name="Tea", slug=slug)
        )
        await session.commit()
    except DomainError as exc:
        await session.rollback()
        return exc
    return None


async def test_category_create_answers_already_exists_to_the_loser_of_a_race(
    settings: Settings, db_session: AsyncSession
) -> None:
    # given: one transaction has inserted the slug but not committed when a second one tries it
    staff = await factories.create_user(db_session, roles=("STAFF",))
    await db_session.commit()
    principal = Principal(user_id=staff.id, roles=frozenset({Role.STAFF}))
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions() as first, sessions() as second:
            await products_service.create_category(
                first, principal, input=products_service.CategoryCreate(name="Tea", slug="tea")
            )

            # when: the second one waits on the first (PostgreSQL: on the unique index; SQLite: on the write lock)
            racing = asyncio.create_task(_create_in(second, principal, "tea"))
            await asyncio.sleep(0.3)
            await first.commit()
            refused = await racing
    finally:
        await engine.dispose()

    # then
    assert refused is not None
    assert [(p.code, p.field) for p in refused.problems] == [("ALREADY_EXISTS", ("input", "slug"))]


async def test_category_create_is_for_staff_only(app: FastAPI, client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    people = await cast(app, db_session)

    # when
    answers = {
        name: await post(client, CATEGORY_CREATE, {"input": {"name": name, "slug": f"c-{n}"}}, caller.headers)
        for n, (name, caller) in enumerate(people.callers.items())
    }

    # then
    assert error_codes(answers["anonymous"]) == ["UNAUTHENTICATED"]
    assert error_codes(answers["customer"]) == ["FORBIDDEN"]
    assert answers["customer"]["data"] is None
    for allowed in ("staff", "admin", "admin_key_as_staff"):
        assert answers[allowed]["data"]["categoryCreate"]["userErrors"] == [], allowed


async def test_category_create_refuses_a_malformed_parent_id(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    await db_session.commit()

    # when
    body = await post(
        client, CATEGORY_CREATE, {"input": {"name": "Tea", "slug": "tea", "parentId": "x"}}, staff.headers
    )

    # then
    assert error_codes(body) == ["BAD_USER_INPUT"]
