"""The event bus: the outbox relay publishes what a dead process left behind; subscribers get their topics, in order,
and one that does not keep up is cut off alone."""

import asyncio
from datetime import timedelta

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.settings import Settings
from domains.common.base import utcnow
from domains.common.outbox import OutboxEvent, record_event, take_pending_events
from schema.events import Event, EventBus, SubscriberTooSlowError


async def test_the_relay_publishes_events_left_behind_by_a_dead_process(app: FastAPI, db_session: AsyncSession) -> None:
    # given: a committed change whose process died before publishing (its outbox row is all that is left)
    record_event(db_session, "ProductUpdated", {"productId": "UHJvZHVjdDox"})
    (row,) = take_pending_events(db_session)
    row.created_at = utcnow() - timedelta(minutes=1)
    await db_session.commit()

    # when
    async with app.state.events.subscribe() as events:
        relayed = await app.state.events.relay(app.state.sessionmaker)
        again = await app.state.events.relay(app.state.sessionmaker)
        received = events.pending()

    # then: published once, and marked so
    assert (relayed, again) == (1, 0)
    assert [(event.topic, event.payload) for event in received] == [("ProductUpdated", {"productId": "UHJvZHVjdDox"})]
    db_session.expire_all()
    assert (await db_session.execute(select(OutboxEvent.published_at))).scalar_one() is not None


async def test_the_relay_leaves_fresh_events_to_the_request_that_wrote_them(
    app: FastAPI, db_session: AsyncSession
) -> None:
    # given: an event committed a moment ago (its request is about to publish it)
    record_event(db_session, "ProductUpdated", {"productId": "UHJvZHVjdDox"})
    await db_session.commit()

    # when
    relayed = await app.state.events.relay(app.state.sessionmaker)

    # then
    assert relayed == 0


async def test_the_app_runs_the_relay_in_the_background(settings: Settings, db_session: AsyncSession) -> None:
    # given: an app whose relay runs every 50 ms, and an event left behind a minute ago
    record_event(db_session, "ProductUpdated", {"productId": "UHJvZHVjdDox"})
    (row,) = take_pending_events(db_session)
    row.created_at = utcnow() - timedelta(minutes=1)
    await db_session.commit()
    app = create_app(settings.model_copy(update={"outbox_relay_interval_seconds": 0.05}))

    # when
    async with LifespanManager(app), app.state.events.subscribe() as events:
        event = await asyncio.wait_for(events.next(), timeout=10)

    # then
    assert event.topic == "ProductUpdated"


async def test_a_subscriber_that_does_not_keep_up_is_cut_off_while_the_others_receive_everything() -> None:
    # given: two subscribers with room for two events each; one reads as events come, one never does
    bus = EventBus(buffer=2)
    dropped_before = REGISTRY.get_sample_value("graphql_subscription_events_dropped_total") or 0.0
    async with bus.subscribe("OrderStatusChanged") as slow, bus.subscribe("OrderStatusChanged") as reader:
        # when: five events
        received = []
        for n in range(5):
            await bus.deliver([Event(n, "OrderStatusChanged", {"n": n}, utcnow())])
            received.append((await reader.next()).id)

        # then: the reader got all five, in order; the other gets what it held, then is cut off
        assert received == [0, 1, 2, 3, 4]
        assert [(await slow.next()).id for _ in range(2)] == [0, 1]
        with pytest.raises(SubscriberTooSlowError) as cut_off:
            await slow.next()
    assert cut_off.value.code == "RATE_LIMITED"
    assert (REGISTRY.get_sample_value("graphql_subscription_events_dropped_total") or 0.0) - dropped_before == 3
    assert bus.subscribers == 0


async def test_a_subscriber_receives_only_its_topics_and_matching_payloads() -> None:
    # given
    bus = EventBus()
    async with bus.subscribe("OrderStatusChanged", where={"orderId": "A"}) as follower:
        # when
        await bus.deliver(
            [
                Event(1, "OrderStatusChanged", {"orderId": "B"}, utcnow()),
                Event(2, "OrderPlaced", {"orderId": "A"}, utcnow()),
                Event(3, "OrderStatusChanged", {"orderId": "A"}, utcnow()),
            ]
        )

        # then
        assert [event.id for event in follower.pending()] == [3]
