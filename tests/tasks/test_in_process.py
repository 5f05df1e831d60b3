"""The embedded default (no REDIS_URL): tasks run in the API process after the commit; `make run` sends webhooks."""

from collections.abc import AsyncIterator
from datetime import timedelta

import orjson
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.settings import Settings
from domains.common.base import utcnow
from domains.common.outbox import OutboxEvent
from domains.orders.models import Order
from domains.users.models import RefreshToken
from domains.webhooks.models import WebhookDelivery
from tasks.jobs import PURGE, REDRIVE, send
from tests import factories
from tests.auth import Account
from tests.orders.conftest import lines, place
from tests.tasks.in_process import create_webhook, signature_of
from tests.tasks.receiver import receiving


@pytest.fixture
async def in_process_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings.model_copy(update={"redis_url": None}))
    async with LifespanManager(app):
        yield app


async def test_an_order_placed_through_http_reaches_the_receiver_once_signed(
    in_process_app: FastAPI, staff: Account, customer: Account, db_session: AsyncSession
) -> None:
    # given
    product = await factories.create_product(db_session, price="12.50", stock=3)
    await db_session.commit()
    transport = ASGITransport(app=in_process_app)
    async with receiving() as receiver, AsyncClient(transport=transport, base_url="http://t") as client:
        secret = await create_webhook(client, staff, receiver.url, "ORDER_PLACED")

        # when
        placed = await place(client, customer, lines((product.id, 2)))
        (request,) = await receiver.wait_for(1)
        await in_process_app.state.tasks.drain(within=10)

    # then
    order = placed["data"]["orderPlace"]["order"]
    assert request.headers["webhook-signature"] == signature_of(secret, request.headers, request.body)
    tampered = request.body.replace(b"25.00", b"0.01")
    assert tampered != request.body
    assert request.headers["webhook-signature"] != signature_of(secret, request.headers, tampered)
    assert request.headers["content-type"] == "application/json"
    body = orjson.loads(request.body)
    assert (body["type"], body["data"]["orderId"], body["data"]["total"]) == ("ORDER_PLACED", order["id"], "25.00")
    assert len(receiver.requests) == 1
    delivery = (await db_session.execute(select(WebhookDelivery))).scalar_one()
    assert (delivery.status, delivery.attempts, delivery.last_response_status) == ("DELIVERED", 1, 200)
    events = (await db_session.execute(select(OutboxEvent))).scalars().all()
    assert all(event.processed_at is not None for event in events)


async def test_an_endpoint_not_subscribed_to_the_event_gets_nothing(
    in_process_app: FastAPI, staff: Account, customer: Account, db_session: AsyncSession
) -> None:
    # given
    product = await factories.create_product(db_session, stock=3)
    await db_session.commit()
    transport = ASGITransport(app=in_process_app)
    async with receiving() as receiver, AsyncClient(transport=transport, base_url="http://t") as client:
        await create_webhook(client, staff, receiver.url, "ORDER_CANCELLED")

        # when
        await place(client, customer, lines((product.id, 1)))
        await in_process_app.state.tasks.drain(within=10)

    # then
    assert receiver.requests == []
    events = (await db_session.execute(select(OutboxEvent))).scalars().all()
    assert [event.topic for event in events] == ["OrderPlaced"]
    assert events[0].processed_at is not None


async def test_the_redrive_sends_an_event_whose_hand_off_was_lost(
    in_process_app: FastAPI, staff: Account, db_session: AsyncSession
) -> None:
    # given: a committed event never put on the queue (the process died after the commit, say)
    transport = ASGITransport(app=in_process_app)
    async with receiving() as receiver, AsyncClient(transport=transport, base_url="http://t") as client:
        await create_webhook(client, staff, receiver.url, "PRODUCT_DELETED")
        old = utcnow() - timedelta(minutes=5)
        db_session.add(OutboxEvent(topic="ProductDeleted", payload={"productId": "UHJvZHVjdDo5"}, created_at=old))
        await db_session.commit()

        # when
        await send(in_process_app.state.tasks, REDRIVE)
        (request,) = await receiver.wait_for(1)
        await in_process_app.state.tasks.drain(within=10)

    # then
    assert orjson.loads(request.body)["data"] == {"productId": "UHJvZHVjdDo5"}
    event = (await db_session.execute(select(OutboxEvent))).scalar_one()
    await db_session.refresh(event)
    assert event.processed_at is not None
    assert event.dispatched_at is not None


async def test_the_purge_deletes_only_what_is_past_its_retention(
    in_process_app: FastAPI, customer: Account, db_session: AsyncSession
) -> None:
    # given: one of each, old and recent
    now = utcnow()
    product = await factories.create_product(db_session, stock=5)
    old_order = await factories.create_order(db_session, customer=customer.user, product=product)
    new_order = await factories.create_order(db_session, customer=customer.user, product=product)
    old_order.idempotency_key, old_order.created_at = "old-key", now - timedelta(days=2)
    new_order.idempotency_key = "new-key"
    for created, handled in ((now - timedelta(days=8), True), (now - timedelta(days=8), False), (now, True)):
        stamp = created if handled else None
        db_session.add(OutboxEvent(topic="X", payload={}, created_at=created, published_at=stamp, processed_at=stamp))
    for expires in (now - timedelta(days=8), now - timedelta(days=1)):
        db_session.add(
            RefreshToken(
                user_id=customer.user.id,
                family_id=str(expires.timestamp()),
                token_hash=str(expires.timestamp()),
                created_at=expires - timedelta(days=14),
                expires_at=expires,
            )
        )
    await db_session.commit()

    # when
    await send(in_process_app.state.tasks, PURGE)
    await in_process_app.state.tasks.drain(within=10)

    # then
    db_session.expire_all()
    events = (await db_session.execute(select(OutboxEvent.created_at, OutboxEvent.processed_at))).all()
    assert len(events) == 2  # the recent one, and the old one not handled yet
    assert sorted(processed is None for _, processed in events) == [False, True]
    tokens = (await db_session.execute(select(RefreshToken.expires_at))).scalars().all()
    assert len(tokens) == 1
    assert tokens[0] > now - timedelta(days=7)
    keys = (await db_session.execute(select(Order.idempotency_key).order_by(Order.id))).scalars().all()
    assert keys == [None, "new-key"]
