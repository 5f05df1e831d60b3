import asyncio
from decimal import Decimal
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

PRODUCT_CREATE = """
mutation ($input: ProductCreateInput!) {
  productCreate(input: $input) {
    product {
      id sku name slug description price { amount currency } stock inStock category { name }
      rating { average count }
    }
    userErrors { field code }
  }
}
"""
PUBLIC_PRODUCT = "query ($id: ID!) { product(id: $id) { name } }"


def _input(**fields: Any) -> dict[str, Any]:
    return {"sku": "TEA-001", "name": "Green tea", "slug": "green-tea", "price": "4.50"} | fields


async def _create(client: AsyncClient, caller: Caller, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = (await gql(client, PRODUCT_CREATE, {"input": _input(**fields)}, caller.headers))[
        "productCreate"
    ]
    return payload


def _codes(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(error["code"], error["field"]) for error in payload["userErrors"]]


async def test_product_create_adds_a_product_in_its_category(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    category = await factories.create_category(db_session, name="Tea")
    await db_session.commit()

    # when
    payload = await _create(
        client,
        staff,
        sku=" TEA-001 ",
        description="Sencha.",
        price="19.9",
        stock=12,
        categoryId=encode_global_id("Category", category.id),
    )

    # then
    product = payload["product"]
    assert payload["userErrors"] == []
    assert {key: value for key, value in product.items() if key != "id"} == {
        "sku": "TEA-001",
        "name": "Green tea",
        "slug": "green-tea",
        "description": "Sencha.",
        "price": {"amount": "19.90", "currency": "USD"},
        "stock": 12,
        "inStock": True,
        "category": {"name": "Tea"},
        "rating": {"average": None, "count": 0},
    }
    assert await factories.recorded_events(db_session) == [("ProductCreated", {"productId": product["id"]})]


async def test_product_create_defaults_to_a_published_uncategorised_product_out_of_stock(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    await db_session.commit()

    # when
    payload = await _create(client, staff)
    seen_by_anonymous = await gql(client, PUBLIC_PRODUCT, {"id": payload["product"]["id"]})

    # then
    assert (payload["product"]["stock"], payload["product"]["inStock"]) == (0, False)
    assert payload["product"]["category"] is None
    assert seen_by_anonymous == {"product": {"name": "Green tea"}}


async def test_product_create_can_create_an_unpublished_product(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    await db_session.commit()

    # when
    payload = await _create(client, staff, isPublished=False)
    seen_by_anonymous = await gql(client, PUBLIC_PRODUCT, {"id": payload["product"]["id"]})

    # then
    assert payload["userErrors"] == []
    assert seen_by_anonymous == {"product": None}


async def test_product_create_reports_every_problem_at_once(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    await db_session.commit()

    # when
    payload = await _create(
        client,
        staff,
        sku="tea 1",
        name=" ",
        slug="Green_Tea",
        price="4.505",
        description="d" * 5001,
        stock=-1,
        categoryId=encode_global_id("Category", 999_999),
    )

    # then
    assert payload["product"] is None
    assert _codes(payload) == [
        ("INVALID", ["input", "sku"]),
        ("REQUIRED", ["input", "name"]),
        ("INVALID", ["input", "slug"]),
        ("TOO_LONG", ["input", "description"]),
        ("INVALID", ["input", "price"]),
        ("INVALID", ["input", "stock"]),
        ("NOT_FOUND", ["input", "categoryId"]),
    ]
    assert await factories.recorded_events(db_session) == []


async def test_product_create_refuses_values_over_their_limits(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    await db_session.commit()

    # when
    too_long = await _create(client, staff, sku="S" * 65, name="n" * 121, slug="s" * 121)
    negative = await _create(client, staff, price="-0.01")
    too_dear = await _create(client, staff, price="10000000000.00")
    not_a_number = await _create(client, staff, price="NaN")

    # then
    assert _codes(too_long) == [
        ("TOO_LONG", ["input", "sku"]),
        ("TOO_LONG", ["input", "name"]),
        ("TOO_LONG", ["input", "slug"]),
    ]
    for payload in (negative, too_dear, not_a_number):
        assert _codes(payload) == [("INVALID", ["input", "price"])]


async def test_product_create_refuses_a_taken_sku_and_slug(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given: an unpublished product holds them (uniqueness ignores visibility)
    existing = await factories.create_product(db_session, published=False)
    await db_session.commit()

    # when
    payload = await _create(client, staff, sku=existing.sku, slug=existing.slug)

    # then
    assert _codes(payload) == [("ALREADY_EXISTS", ["input", "sku"]), ("ALREADY_EXISTS", ["input", "slug"])]


def _fields() -> products_service.ProductCreate:
    return products_service.ProductCreate(sku="TEA-001", name="Tea", slug="tea", price=Decimal(1))


async def _create_in(session: AsyncSession, principal: Principal) -> DomainError | None:
    try:
        await products_service.create_product(session, principal, input=_fields())
        await session.commit()
    except DomainError as exc:
        await session.rollback()
        return exc
    return None


async def test_product_create_answers_already_exists_to_the_loser_of_a_race(
    settings: Settings, db_session: AsyncSession
) -> None:
    # given: one transaction has inserted the SKU and slug but not committed when a second one tries them
    staff = await factories.create_user(db_session, roles=("STAFF",))
    await db_session.commit()
    principal = Principal(user_id=staff.id, roles=frozenset({Role.STAFF}))
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions() as first, sessions() as second:
            await products_service.create_product(first, principal, input=_fields())

            # when: the second one waits on the first (PostgreSQL: on the unique index; SQLite: on the write lock)
            racing = asyncio.create_task(_create_in(second, principal))
            await asyncio.sleep(0.3)
            await first.commit()
            refused = await racing
    finally:
        await engine.dispose()

    # then
    assert refused is not None
    assert [(p.code, p.field) for p in refused.problems] == [
        ("ALREADY_EXISTS", ("input", "sku")),
        ("ALREADY_EXISTS", ("input", "slug")),
    ]


async def test_product_create_is_for_staff_only(app: FastAPI, client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    people = await cast(app, db_session)

    # when
    answers = {
        name: await post(client, PRODUCT_CREATE, {"input": _input(sku=f"S-{n}", slug=f"p-{n}")}, caller.headers)
        for n, (name, caller) in enumerate(people.callers.items())
    }

    # then
    assert error_codes(answers["anonymous"]) == ["UNAUTHENTICATED"]
    assert error_codes(answers["customer"]) == ["FORBIDDEN"]
    for allowed in ("staff", "admin", "admin_key_as_staff"):
        assert answers[allowed]["data"]["productCreate"]["userErrors"] == [], allowed
    skus = set((await db_session.execute(select(products_models.Product.sku))).scalars())
    assert skus == {"S-3", "S-4", "S-5"}
