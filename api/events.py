"""The event bus's background work, run for the app's lifetime: the outbox relay and the Redis subscriber.

The bus itself (schema/events.py) fans committed events out; here are the tasks the lifespan keeps
running beside it.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.background import running
from api.settings import Settings
from schema.events import EventBus, RedisEventBus

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
