"""The task worker as a real process on Redis and the database: retries, a worker killed mid-delivery, bursts."""

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.auth.principal import build_token_issuer
from api.db import create_engine, create_sessionmaker
from api.settings import Settings
from domains.common.outbox import OutboxEvent, record_event
from domains.webhooks.models import WebhookDelivery
from schema.unit_of_work import RequestDb
from tests import factories
from tests.auth import Account, signed_in
from tests.orders.conftest import lines, place
from tests.tasks.in_process import create_webhook, signature_of
from tests.tasks.processes import environment, running_scheduler, running_worker
from tests.tasks.receiver import receiving

SETTLE_SECONDS = 3.0  # a few re-drive ticks: long enough for a retry that should not happen to happen


@pytest.fixture
async def app(redis_settings: Settings) -> AsyncIterator[FastAPI]:
    """The API on Redis: it puts tasks on the stream, the worker process runs them."""
    application = create_app(redis_settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        yield http


async def _deliveries(session: AsyncSession) -> list[WebhookDelivery]:
    session.expire_all()
    return list((await session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id))).scalars())


async def _unhandled_events(session: AsyncSession) -> int:
    stmt = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.processed_at.is_(None))
    return int((await session.execute(stmt)).scalar_one())


async def test_an_order_placed_through_http_reaches_the_receiver_once_with_a_valid_signature(
    redis_settings: Settings,
    client: AsyncClient,
    staff: Account,
    customer: Account,
    db_session: AsyncSession,
    tmp_path: Path,
) -> None:
    # given
    product = await factories.create_product(db_session, price="12.50", stock=10)
    await db_session.commit()
    env = environment(redis_settings)
    async with receiving() as receiver, running_worker(env, tmp_path / "worker.log"):
        secret = await create_webhook(client, staff, receiver.url, "ORDER_PLACED")

        # when
        placed = await place(client, customer, lines((product.id, 2)))
        (request,) = await receiver.wait_for(1)
        await asyncio.sleep(SETTLE_SECONDS)

    # then: once; the signature checks out with the secret, and fails for a body changed by one byte
    assert len(receiver.requests) == 1
    assert request.headers["webhook-signature"] == signature_of(secret, request.headers, request.body)
    tampered = request.body.replace(b"25.00", b"25.01")
    assert tampered != request.body
    assert request.headers["webhook-signature"] != signature_of(secret, request.headers, tampered)
    body = orjson.loads(request.body)
    assert (body["type"], body["data"]["orderId"]) == ("ORDER_PLACED", placed["data"]["orderPlace"]["order"]["id"])
    (delivery,) = await _deliveries(db_session)
    assert (delivery.status, delivery.attempts, f"evt_{delivery.event_id}") == (
        "DELIVERED",
        1,
        request.headers["webhook-id"],
    )


async def test_5xx_is_retried_with_growing_delays_until_it_is_delivered_and_a_400_is_not_retried(
    redis_settings: Settings,
    client: AsyncClient,
    staff: Account,
    customer: Account,
    db_session: AsyncSession,
    tmp_path: Path,
) -> None:
    # given
    product = await factories.create_product(db_session, stock=10)
    await db_session.commit()
    env = environment(redis_settings)
    async with (
        receiving() as receiver,
        running_worker(env, tmp_path / "worker.log") as worker,
        running_scheduler(env, tmp_path / "scheduler.log"),
    ):
        secret = await create_webhook(client, staff, receiver.url, "ORDER_PLACED")
        receiver.statuses = [500, 500, 500]

        # when
        await place(client, customer, lines((product.id, 1)))
        requests = await receiver.wait_for(4)
        receiver.statuses = [400]
        await place(client, customer, lines((product.id, 1)))
        await receiver.wait_for(5)
        await asyncio.sleep(SETTLE_SECONDS)
        async with httpx.AsyncClient() as http:
            exposed = (await http.get(worker.metrics_url or "")).text

    # then: four attempts of one event, each signed, further apart each time (1 s base, doubling). Only the
    # lower bounds are the schedule's: on a loaded machine any attempt may start late, so no upper bound or
    # comparison between observed gaps (a late first retry once made gap 1 look longer than gap 3).
    retried, refused = requests[:4], receiver.requests[4:]
    assert len({request.headers["webhook-id"] for request in retried}) == 1
    assert all(r.headers["webhook-signature"] == signature_of(secret, r.headers, r.body) for r in retried)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(retried)]
    assert gaps[0] >= 0.75
    assert gaps[1] >= 1.5
    assert gaps[2] >= 3.0
    assert len(refused) == 1  # the 400 was not tried again
    first, second = await _deliveries(db_session)
    assert (first.status, first.attempts, first.last_response_status) == ("DELIVERED", 4, 200)
    assert (second.status, second.attempts, second.last_response_status) == ("FAILED", 1, 400)
    assert 'webhook_attempts_total{outcome="retryable"} 3.0' in exposed
    assert 'webhook_attempts_total{outcome="refused"} 1.0' in exposed
    assert 'tasks_succeeded_total{task="storefront.handle_event"} 2.0' in exposed
    assert 'tasks_retried_total{task="storefront.deliver_webhook"} 3.0' in exposed
    assert re.search(r'^task_queue_depth\{state="waiting"\} \d', exposed, re.MULTILINE)
    assert re.search(r"^outbox_oldest_unhandled_age_seconds \d", exposed, re.MULTILINE)
    assert re.search(r'^task_duration_seconds_count\{task="storefront.deliver_webhook"\} 5.0', exposed, re.MULTILINE)


async def test_a_worker_killed_mid_delivery_is_replaced_and_the_receiver_gets_the_event_once(
    redis_settings: Settings,
    client: AsyncClient,
    staff: Account,
    customer: Account,
    db_session: AsyncSession,
    tmp_path: Path,
) -> None:
    # given: the receiver holds the first request it gets
    product = await factories.create_product(db_session, stock=10)
    await db_session.commit()
    env = environment(redis_settings)
    async with receiving() as receiver, running_scheduler(env, tmp_path / "scheduler.log"):
        await create_webhook(client, staff, receiver.url, "ORDER_PLACED")
        receiver.hold = asyncio.Event()
        async with running_worker(env, tmp_path / "worker-1.log") as worker:
            await place(client, customer, lines((product.id, 1)))
            await receiver.wait_for(1)

            # when: the worker dies with the request in flight; a new one starts
            worker.kill()
            await worker.process.wait()
        receiver.hold.set()
        receiver.hold = None
        async with running_worker(env, tmp_path / "worker-2.log"):
            await receiver.wait_for(2)
            await asyncio.sleep(SETTLE_SECONDS)

    # then: sent again with the same webhook-id, so a deduplicating receiver has it once
    assert len(receiver.requests) == 2
    assert len(receiver.webhook_ids) == 1
    (delivery,) = await _deliveries(db_session)
    assert (delivery.status, delivery.last_response_status) == ("DELIVERED", 200)
    assert await _unhandled_events(db_session) == 0


async def test_a_transaction_that_rolls_back_enqueues_nothing(app: FastAPI, redis_settings: Settings) -> None:
    # given
    stream = f"{redis_settings.redis_key_prefix}:tasks"
    redis = Redis.from_url(redis_settings.redis_url or "")

    # when
    rolled_back = RequestDb(app.state.sessionmaker(), on_commit=app.state.after_commit)
    with pytest.raises(RuntimeError, match="refused"):
        await _record_then_fail(rolled_back)
    await rolled_back.close()
    after_rollback = await redis.xlen(stream)
    committed = RequestDb(app.state.sessionmaker(), on_commit=app.state.after_commit)
    async with committed.transaction() as session:
        record_event(session, "OrderPlaced", {"orderId": "T3JkZXI6Mg=="})
    await committed.close()
    after_commit = await redis.xlen(stream)
    await redis.aclose()

    # then
    assert (after_rollback, after_commit) == (0, 1)


async def _record_then_fail(db: RequestDb) -> None:
    async with db.transaction() as session:
        record_event(session, "OrderPlaced", {"orderId": "T3JkZXI6MQ=="})
        raise RuntimeError("refused")


@pytest.mark.alone
async def test_500_orders_placed_in_a_burst_produce_exactly_500_deliveries(
    postgres_redis_settings: Settings, tmp_path: Path
) -> None:
    # given: the API, a worker and the scheduler on PostgreSQL and Redis
    settings = postgres_redis_settings
    engine = create_engine(settings)
    session = create_sessionmaker(engine)()
    staff_user = await factories.create_user(session, roles=("STAFF",))
    buyer = await factories.create_user(session)
    product = await factories.create_product(session, stock=1000)
    await session.commit()
    issuer = build_token_issuer(settings)
    staff, customer = signed_in(issuer, staff_user), signed_in(issuer, buyer)
    env = environment(settings)
    slots = asyncio.Semaphore(20)
    app = create_app(settings)

    async def place_one(client: AsyncClient) -> None:
        async with slots:
            body = await place(client, customer, lines((product.id, 1)))
            assert body["data"]["orderPlace"]["userErrors"] == []

    try:
        async with (
            LifespanManager(app),
            AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
            receiving() as receiver,
            running_worker(env, tmp_path / "worker.log"),
            running_scheduler(env, tmp_path / "scheduler.log"),
        ):
            await create_webhook(client, staff, receiver.url, "ORDER_PLACED")

            # when: 500 orders, 20 at a time
            await asyncio.gather(*(place_one(client) for _ in range(500)))
            await receiver.wait_for(500, within=180)
            await asyncio.sleep(SETTLE_SECONDS)

        # then
        assert len(receiver.requests) == 500
        assert len(receiver.webhook_ids) == 500
        deliveries = await _deliveries(session)
        assert len(deliveries) == 500
        assert {delivery.status for delivery in deliveries} == {"DELIVERED"}
        assert await _unhandled_events(session) == 0
    finally:
        await session.close()
        await engine.dispose()


async def test_with_redis_down_a_write_succeeds_and_its_event_waits_for_the_redrive(
    settings: Settings, customer: Account, db_session: AsyncSession
) -> None:
    # given: the queue's Redis is down (nothing listens at its port)
    product = await factories.create_product(db_session, stock=3)
    await db_session.commit()
    app = create_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))

    # when
    async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        body = await place(http, customer, lines((product.id, 1)))

    # then: the order stands; its event is neither sent nor handled, so the re-drive will send it
    assert body["data"]["orderPlace"]["userErrors"] == []
    (event,) = (await db_session.execute(select(OutboxEvent))).scalars().all()
    assert (event.dispatched_at, event.processed_at) == (None, None)
