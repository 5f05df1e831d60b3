import asyncio
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from api.settings import Settings
from domains.common.outbox import OutboxEvent
from domains.orders import models as orders_models
from domains.products import models as products_models
from tests import factories
from tests.auth import bearer
from tests.graphql import error_codes, gql
from tests.orders.conftest import lines, place


async def _stock(session: AsyncSession, product_id: int) -> int:
    stmt = select(products_models.Product.stock).where(products_models.Product.id == product_id)
    return int((await session.execute(stmt)).scalar_one())


async def _count(session: AsyncSession, model: Any) -> int:
    return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def _errors(body: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(error["code"], error["field"]) for error in body["data"]["orderPlace"]["userErrors"]]


async def test_order_place_snapshots_prices_and_takes_stock(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    customer = await factories.create_user(db_session)
    kettle = await factories.create_product(db_session, price="19.90", stock=5)
    mug = await factories.create_product(db_session, price="4.35", stock=10)
    await db_session.commit()

    # when: the prices change after the order
    body = await place(client, bearer(app, customer), lines((kettle.id, 2), (mug.id, 3)))
    kettle.price = Decimal("99.00")
    await db_session.commit()
    again = await gql(
        client,
        "query ($id: ID!) { order(id: $id) { total { amount } } }",
        {"id": body["data"]["orderPlace"]["order"]["id"]},
        bearer(app, customer).headers,
    )

    # then
    order = body["data"]["orderPlace"]["order"]
    assert body["data"]["orderPlace"]["userErrors"] == []
    assert order["status"] == "PENDING"
    assert order["total"] == {"amount": "52.85", "currency": "USD"}
    assert [(i["quantity"], i["unitPrice"]["amount"], i["lineTotal"]["amount"]) for i in order["items"]] == [
        (2, "19.90", "39.80"),
        (3, "4.35", "13.05"),
    ]
    assert again == {"order": {"total": {"amount": "52.85"}}}
    assert (await _stock(db_session, kettle.id), await _stock(db_session, mug.id)) == (3, 7)


async def test_order_place_refuses_bad_lines_all_at_once(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    customer = await factories.create_user(db_session)
    product = await factories.create_product(db_session)
    await db_session.commit()
    caller = bearer(app, customer)

    # when
    bad_lines = await place(client, caller, lines((product.id, 0), (product.id, 1000)), key="k" * 101)
    empty = await place(client, caller, [])
    too_many = await place(client, caller, lines(*((product.id + n, 1) for n in range(51))))

    # then
    assert _errors(bad_lines) == [
        ("INVALID", ["input", "items", "0", "quantity"]),
        ("INVALID", ["input", "items", "1", "quantity"]),
        ("DUPLICATE", ["input", "items", "1", "productId"]),
        ("INVALID", ["input", "idempotencyKey"]),
    ]
    assert _errors(empty) == [("REQUIRED", ["input", "items"])]
    assert _errors(too_many) == [("TOO_LONG", ["input", "items"])]


async def test_order_place_is_all_or_nothing(app: FastAPI, client: AsyncClient, db_session: AsyncSession) -> None:
    # given: one line that fits, one product out of stock, one unpublished
    customer = await factories.create_user(db_session)
    plenty = await factories.create_product(db_session, stock=10)
    scarce = await factories.create_product(db_session, stock=1)
    draft = await factories.create_product(db_session, published=False)
    await db_session.commit()

    # when
    body = await place(client, bearer(app, customer), lines((plenty.id, 2), (scarce.id, 2), (draft.id, 1)))

    # then: refused as a whole, nothing taken, the stock count not revealed
    assert _errors(body) == [
        ("OUT_OF_STOCK", ["input", "items", "1", "quantity"]),
        ("NOT_FOUND", ["input", "items", "2", "productId"]),
    ]
    assert "1" not in body["data"]["orderPlace"]["userErrors"][0]["message"]
    assert (await _stock(db_session, plenty.id), await _stock(db_session, scarce.id)) == (10, 1)
    assert await _count(db_session, orders_models.Order) == 0
    assert await _count(db_session, OutboxEvent) == 0


async def test_order_place_retry_with_the_same_key_returns_the_same_order(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    customer = await factories.create_user(db_session)
    product = await factories.create_product(db_session, stock=10)
    await db_session.commit()
    caller = bearer(app, customer)

    # when
    first = await place(client, caller, lines((product.id, 2)), key="cart-42")
    retry = await place(client, caller, lines((product.id, 2)), key="cart-42")
    reused = await place(client, caller, lines((product.id, 3)), key="cart-42")

    # then
    assert retry["data"]["orderPlace"]["order"]["id"] == first["data"]["orderPlace"]["order"]["id"]
    assert _errors(reused) == [("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])]
    assert await _stock(db_session, product.id) == 8
    assert await _count(db_session, orders_models.Order) == 1


async def test_fifty_concurrent_buyers_never_oversell(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: 10 units and 50 buyers
    product = await factories.create_product(db_session, stock=10)
    buyers = [await factories.create_user(db_session) for _ in range(50)]
    await db_session.commit()

    # when: all order one unit at once, each request on its own connection
    bodies = await asyncio.gather(*(place(client, bearer(app, buyer), lines((product.id, 1))) for buyer in buyers))

    # then
    assert [error_codes(body) for body in bodies] == [[]] * 50
    placed = [body for body in bodies if body["data"]["orderPlace"]["order"]]
    refused = [_errors(body) for body in bodies if not body["data"]["orderPlace"]["order"]]
    assert len(placed) == 10
    assert refused == [[("OUT_OF_STOCK", ["input", "items", "0", "quantity"])]] * 40
    assert await _stock(db_session, product.id) == 0
    assert await _count(db_session, orders_models.Order) == 10


async def test_concurrent_orders_for_overlapping_products_in_opposite_orders_all_succeed(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    first = await factories.create_product(db_session, stock=100)
    second = await factories.create_product(db_session, stock=100)
    buyers = [await factories.create_user(db_session) for _ in range(20)]
    await db_session.commit()

    # when: half list A then B, half B then A
    orders = [
        lines((first.id, 1), (second.id, 2)) if n % 2 else lines((second.id, 2), (first.id, 1)) for n in range(20)
    ]
    bodies = await asyncio.gather(
        *(place(client, bearer(app, buyer), items) for buyer, items in zip(buyers, orders, strict=True))
    )

    # then: no deadlock or serialization failure reached anyone
    assert [(error_codes(body), _errors(body)) for body in bodies] == [([], [])] * 20
    assert (await _stock(db_session, first.id), await _stock(db_session, second.id)) == (80, 60)


async def test_twenty_concurrent_calls_with_one_key_create_one_order(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    customer = await factories.create_user(db_session)
    product = await factories.create_product(db_session, stock=100)
    await db_session.commit()
    caller = bearer(app, customer)

    # when
    bodies = await asyncio.gather(*(place(client, caller, lines((product.id, 3)), key="once") for _ in range(20)))

    # then
    ids = {body["data"]["orderPlace"]["order"]["id"] for body in bodies}
    assert [error_codes(body) for body in bodies] == [[]] * 20
    assert len(ids) == 1
    assert await _count(db_session, orders_models.Order) == 1
    assert await _stock(db_session, product.id) == 97


async def test_a_failure_after_the_stock_is_taken_leaves_stock_and_orders_untouched(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, settings: Settings
) -> None:
    # given: the database refuses order rows, so the failure strikes after the stock update
    customer = await factories.create_user(db_session)
    product = await factories.create_product(db_session, stock=5)
    await db_session.commit()
    if settings.is_sqlite:
        create = ["CREATE TRIGGER fail_order BEFORE INSERT ON \"order\" BEGIN SELECT RAISE(ABORT, 'injected'); END"]
        drop = ["DROP TRIGGER fail_order"]
    else:
        create = [
            "CREATE FUNCTION fail_order() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$",
            'CREATE TRIGGER fail_order BEFORE INSERT ON "order" FOR EACH ROW EXECUTE FUNCTION fail_order()',
        ]
        drop = ['DROP TRIGGER fail_order ON "order"', "DROP FUNCTION fail_order()"]
    for statement in create:
        await db_session.execute(text(statement))
    await db_session.commit()

    # when
    try:
        body = await place(client, bearer(app, customer), lines((product.id, 2)))
    finally:
        for statement in drop:
            await db_session.execute(text(statement))
        await db_session.commit()

    # then: the client sees only the masked error; nothing was kept
    assert error_codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert body["errors"][0]["message"] == "Internal server error"
    assert await _stock(db_session, product.id) == 5
    assert await _count(db_session, orders_models.Order) == 0
    assert await _count(db_session, OutboxEvent) == 0


async def test_the_payload_shows_stock_taken_by_an_earlier_field_of_the_same_request(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: staff see stock; two orders in one document
    staff = await factories.create_user(db_session, roles=("STAFF",))
    product = await factories.create_product(db_session, stock=10)
    await db_session.commit()
    document = """
    mutation ($items: [OrderLineInput!]!) {
      a: orderPlace(input: {items: $items}) { order { items { product { stock } } } }
      b: orderPlace(input: {items: $items}) { order { items { product { stock } } } }
    }
    """

    # when
    data = await gql(client, document, {"items": lines((product.id, 4))}, bearer(app, staff).headers)

    # then: the second payload does not serve the product cached by the first
    assert data["a"]["order"]["items"] == [{"product": {"stock": 6}}]
    assert data["b"]["order"]["items"] == [{"product": {"stock": 2}}]
