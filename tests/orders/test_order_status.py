"""orderCancel and orderStatusUpdate: the state machine, stock returned exactly once, events published."""

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from domains.products import models as products_models
from tests import factories
from tests.auth import Caller, bearer
from tests.graphql import error_codes, gql, post
from tests.orders.conftest import ORDER_CANCEL, ORDER_STATUS_UPDATE, lines, place


async def _stock(session: AsyncSession, product_id: int) -> int:
    stmt = select(products_models.Product.stock).where(products_models.Product.id == product_id)
    return int((await session.execute(stmt)).scalar_one())


async def _placed(app: FastAPI, client: AsyncClient, session: AsyncSession) -> tuple[Caller, Caller, str, int]:
    customer = await factories.create_user(session)
    staff = await factories.create_user(session, roles=("STAFF",))
    product = await factories.create_product(session, stock=10)
    await session.commit()
    caller = bearer(app, customer)
    body = await place(client, caller, lines((product.id, 3)))
    return caller, bearer(app, staff), body["data"]["orderPlace"]["order"]["id"], product.id


async def _set(client: AsyncClient, caller: Caller, order_id: str, status: str) -> dict[str, Any]:
    data = await gql(client, ORDER_STATUS_UPDATE, {"id": order_id, "status": status}, caller.headers)
    payload: dict[str, Any] = data["orderStatusUpdate"]
    return payload


async def test_order_cancel_returns_the_stock(app: FastAPI, client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    customer, _, order_id, product_id = await _placed(app, client, db_session)

    # when
    data = await gql(client, ORDER_CANCEL, {"id": order_id}, customer.headers)

    # then
    assert data["orderCancel"] == {"order": {"id": order_id, "status": "CANCELLED"}, "userErrors": []}
    assert await _stock(db_session, product_id) == 10


async def test_concurrent_cancels_return_the_stock_once(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    customer, _, order_id, product_id = await _placed(app, client, db_session)

    # when
    bodies = await asyncio.gather(*(post(client, ORDER_CANCEL, {"id": order_id}, customer.headers) for _ in range(10)))

    # then
    payloads = [body["data"]["orderCancel"] for body in bodies]
    assert [error_codes(body) for body in bodies] == [[]] * 10
    assert sum(payload["order"] is not None for payload in payloads) == 1
    refused = [payload["userErrors"] for payload in payloads if payload["order"] is None]
    assert refused == [[{"field": ["input", "orderId"], "code": "INVALID_TRANSITION"}]] * 9
    assert await _stock(db_session, product_id) == 10


async def test_the_status_follows_the_state_machine(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    customer, staff, order_id, product_id = await _placed(app, client, db_session)

    # when
    skipped = await _set(client, staff, order_id, "SHIPPED")
    steps = [(await _set(client, staff, order_id, status))["order"] for status in ("PAID", "SHIPPED", "DELIVERED")]
    too_late = await gql(client, ORDER_CANCEL, {"id": order_id}, customer.headers)

    # then
    assert skipped == {"order": None, "userErrors": [{"field": ["input", "status"], "code": "INVALID_TRANSITION"}]}
    assert [step["status"] for step in steps] == ["PAID", "SHIPPED", "DELIVERED"]
    assert too_late["orderCancel"]["userErrors"] == [{"field": ["input", "orderId"], "code": "INVALID_TRANSITION"}]
    assert await _stock(db_session, product_id) == 7


async def test_staff_cancelling_through_a_status_update_returns_the_stock(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    _, staff, order_id, product_id = await _placed(app, client, db_session)
    await _set(client, staff, order_id, "PAID")

    # when
    payload = await _set(client, staff, order_id, "CANCELLED")

    # then
    assert payload["order"]["status"] == "CANCELLED"
    assert await _stock(db_session, product_id) == 10


@pytest.mark.parametrize("who", ["another customer", "unknown order"])
async def test_order_cancel_answers_not_found_for_orders_you_cannot_see(
    who: str, app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    _, _, order_id, product_id = await _placed(app, client, db_session)
    stranger = await factories.create_user(db_session)
    await db_session.commit()
    target = order_id if who == "another customer" else encode_global_id("Order", 10**9)

    # when
    data = await gql(client, ORDER_CANCEL, {"id": target}, bearer(app, stranger).headers)

    # then
    assert data["orderCancel"] == {"order": None, "userErrors": [{"field": ["input", "orderId"], "code": "NOT_FOUND"}]}
    assert await _stock(db_session, product_id) == 7


async def test_status_changes_and_orders_reach_the_event_bus_only_after_commit(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: a subscriber on the app's bus
    async with app.state.events.subscribe() as events:
        _, staff, order_id, product_id = await _placed(app, client, db_session)
        customer = await factories.create_user(db_session)
        await db_session.commit()

        # when: a status change, then an order refused for lack of stock (rolled back)
        await _set(client, staff, order_id, "PAID")
        await place(client, bearer(app, customer), lines((product_id, 100)))

    # then
    received = events.pending()
    assert [event.topic for event in received] == ["OrderPlaced", "OrderStatusChanged"]
    assert received[1].payload | {"changedAt": None} == {
        "orderId": order_id,
        "previousStatus": "PENDING",
        "status": "PAID",
        "changedAt": None,
    }
