"""The in-process event bus, fed from the transactional outbox.

A mutation's events are published right after its transaction commits (`RequestDb`); the relay
publishes any row still unpublished after a grace period, which covers a process that died
between its commit and its publish. Delivery is therefore at least once: consumers that must not
act twice deduplicate by `Event.id`. With several workers each publishes on its own bus; Redis
pub/sub fans events out across processes when subscriptions land.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domains.common.base import utcnow
from domains.common.outbox import OutboxEvent

RELAY_GRACE = timedelta(seconds=10)
RELAY_BATCH = 100
SUBSCRIBER_BUFFER = 1000

logger = structlog.get_logger("api.events")


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    topic: str
    payload: dict[str, Any]
    created_at: datetime


class EventBus:
    """Fan committed domain events out to this process's subscribers."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[Event]]:
        """Receive every event published while the block runs."""
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=SUBSCRIBER_BUFFER)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    def _fan_out(self, event: Event) -> None:
        for queue in self._queues:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                logger.warning("events.subscriber_full", event_id=event.id, topic=event.topic)

    async def publish_committed(self, session: AsyncSession, rows: Sequence[OutboxEvent]) -> None:
        """Publish the events of a transaction that has committed, then mark their rows published."""
        for row in rows:
            self._fan_out(Event(row.id, row.topic, row.payload, row.created_at))
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id.in_([row.id for row in rows])).values(published_at=utcnow())
        )
        await session.commit()

    async def relay(self, sessionmaker: async_sessionmaker[AsyncSession], *, grace: timedelta = RELAY_GRACE) -> int:
        """Publish outbox rows left unpublished for longer than `grace`; return how many."""
        left_behind = (OutboxEvent.published_at.is_(None), OutboxEvent.created_at <= utcnow() - grace)
        async with sessionmaker() as session:
            # Almost always nothing is left behind: find out without a transaction or a lock.
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            if (await session.execute(select(OutboxEvent.id).where(*left_behind).limit(1))).first() is None:
                return 0
        async with sessionmaker() as session, session.begin():
            stmt = (
                select(OutboxEvent)
                .where(*left_behind)
                .order_by(OutboxEvent.id)
                .limit(RELAY_BATCH)
                .with_for_update(skip_locked=True)
            )
            rows = list((await session.execute(stmt)).scalars())
            for row in rows:
                self._fan_out(Event(row.id, row.topic, row.payload, row.created_at))
                row.published_at = utcnow()
        return len(rows)


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

    task = asyncio.create_task(loop(), name="outbox-relay")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
