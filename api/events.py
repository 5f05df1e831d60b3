"""What becomes of committed domain events: the bus and its background work, and the hand-off to the task queue.

The bus itself (schema/events.py) fans committed events out to subscribers; here are what the
lifespan keeps running beside it (the outbox relay, the Redis subscriber) and the after-commit hook
that hands a transaction's events to both the bus and the task queue.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq import AsyncBroker

from api.settings import Settings
from domains.common import outbox
from domains.common.background import running
from domains.common.base import utcnow
from schema.events import Event, EventBus, RedisEventBus
from schema.unit_of_work import PublishCommitted
from tasks.jobs import HANDLE_EVENT, enqueue

logger = structlog.get_logger("api.events")


def create_event_bus(settings: Settings, redis: Redis | None) -> EventBus:
    """Return the bus: through Redis pub/sub when configured (every worker and instance), else in-process."""
    if redis is None:
        return EventBus(buffer=settings.subscription_buffer)
    return RedisEventBus(redis, f"{settings.redis_key_prefix}:events", buffer=settings.subscription_buffer)


@contextlib.asynccontextmanager
async def running_bus(bus: EventBus) -> AsyncIterator[None]:
    """Keep the bus's subscription to other processes (Redis) for as long as the block runs."""
    async with running("event-bus-subscriber", bus.run()):
        yield


@contextlib.asynccontextmanager
async def running_relay(
    bus: EventBus, sessionmaker: async_sessionmaker[AsyncSession], *, interval: float
) -> AsyncIterator[None]:
    """Run the outbox relay every `interval` seconds in the background for as long as the block runs."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await bus.relay(sessionmaker)
            except Exception:
                logger.exception("events.relay_failed")

    async with running("outbox-relay", loop()):
        yield


def after_commit(bus: EventBus, queue: AsyncBroker) -> PublishCommitted:
    """The hook a unit of work calls once its transaction committed: hand its events to the bus and the queue.

    Each hand-off that succeeds is marked on the rows (`published_at`, `dispatched_at`); one that fails
    is logged and left to the relay (the bus) or the re-drive job (the queue).
    """

    async def hand_on(session: AsyncSession, rows: Sequence[outbox.OutboxEvent]) -> None:
        ids = [row.id for row in rows]
        now = utcnow()
        done: dict[str, datetime] = {}
        try:
            await bus.deliver([Event.from_row(row) for row in rows])
            done["published_at"] = now
        except Exception:
            logger.exception("events.publish_failed", events=len(ids))
        try:
            await enqueue(queue, HANDLE_EVENT, ids)
            done["dispatched_at"] = now
        except Exception:
            logger.exception("tasks.enqueue_failed", events=len(ids))
        await outbox.mark_handed_on(session, ids, **done)
        await session.commit()

    return hand_on
