"""The outbox relay: an event committed but never published (the process died) is published later."""

import asyncio
from datetime import timedelta

from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.settings import Settings
from domains.common.base import utcnow
from domains.common.outbox import OutboxEvent, record_event, take_pending_events


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
