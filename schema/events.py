"""Committed domain events, fanned out to this process's subscribers, and through Redis to every process.

A mutation's events are published right after its transaction commits (`RequestDb`); the outbox
relay publishes any row still unpublished after a grace period, which covers a process that died
(or a Redis that was down) between the commit and the publish. Delivery is therefore at least
once: consumers that must not act twice deduplicate by `Event.id`.

- `EventBus`, the embedded default, hands events straight to this process's subscribers.
- `RedisEventBus` publishes them on one Redis channel, and each process keeps ONE subscriber
  connection to it (not one per client) that hands what arrives to its own subscribers: an event
  committed on one worker reaches the subscribers of every worker and instance, the publishing
  one included, once.

Each subscriber reads from a bounded queue. One that does not keep up is cut off (its stream
raises `SubscriberTooSlowError` once it has read what it had) instead of growing without bound;
`events_dropped_total` counts what it missed.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domains.common.base import utcnow
from domains.common.exceptions import ClientError
from domains.common.outbox import OutboxEvent
from schema import metrics

RELAY_GRACE = timedelta(seconds=10)
RELAY_BATCH = 100
SUBSCRIBER_BUFFER = 256
RECONNECT_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
POLL_SECONDS = 1.0
TOO_SLOW = "This subscription could not keep up with its events and was ended; subscribe again."

logger = structlog.get_logger("schema.events")


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    topic: str
    payload: dict[str, Any]
    created_at: datetime

    @classmethod
    def from_row(cls, row: OutboxEvent) -> "Event":
        return cls(row.id, row.topic, row.payload, row.created_at)

    def encode(self) -> bytes:
        return orjson.dumps(
            {"id": self.id, "topic": self.topic, "payload": self.payload, "createdAt": self.created_at.isoformat()}
        )

    @classmethod
    def decode(cls, data: bytes | str) -> "Event":
        fields = orjson.loads(data)
        return cls(fields["id"], fields["topic"], fields["payload"], datetime.fromisoformat(fields["createdAt"]))


class SubscriberTooSlowError(ClientError):
    """The subscriber's queue overflowed: its subscription ends, the others go on."""

    code = "RATE_LIMITED"

    def __init__(self) -> None:
        super().__init__(TOO_SLOW)


class EventStream:
    """One subscriber's events, in the order they were published, up to a bound."""

    def __init__(self, topics: frozenset[str], where: Mapping[str, object], *, buffer: int) -> None:
        self.topics = topics
        self.where = dict(where)
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=buffer)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        if self.overflowed:
            metrics.EVENTS_DROPPED.inc()
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            metrics.EVENTS_DROPPED.inc()
            logger.warning("events.subscriber_too_slow", topics=sorted(self.topics))

    def wants(self, event: Event) -> bool:
        if self.topics and event.topic not in self.topics:
            return False
        return all(event.payload.get(key) == value for key, value in self.where.items())

    def pending(self) -> list[Event]:
        """Take the events already received, without waiting."""
        events = []
        while not self._queue.empty():
            events.append(self._queue.get_nowait())
        metrics.EVENTS_DELIVERED.inc(len(events))
        return events

    async def next(self) -> Event:
        """The next event; raise SubscriberTooSlowError once the stream overflowed and what it held is read."""
        if self.overflowed and self._queue.empty():
            raise SubscriberTooSlowError
        event = await self._queue.get()
        metrics.EVENTS_DELIVERED.inc()
        return event


class EventBus:
    """Fan committed domain events out to this process's subscribers (the embedded default)."""

    def __init__(self, *, buffer: int = SUBSCRIBER_BUFFER) -> None:
        self._streams: set[EventStream] = set()
        self._buffer = buffer

    @contextlib.asynccontextmanager
    async def subscribe(self, *topics: str, where: Mapping[str, object] | None = None) -> AsyncIterator[EventStream]:
        """Receive the events of these topics (none: every topic) whose payload has the `where` values."""
        stream = EventStream(frozenset(topics), where or {}, buffer=self._buffer)
        self._streams.add(stream)
        try:
            yield stream
        finally:
            self._streams.discard(stream)

    @property
    def subscribers(self) -> int:
        return len(self._streams)

    def _fan_out(self, event: Event) -> None:
        for stream in list(self._streams):
            if stream.wants(event):
                stream.offer(event)

    async def deliver(self, events: Sequence[Event]) -> None:
        """Hand events to the subscribers (those of every process, with Redis)."""
        for event in events:
            self._fan_out(event)

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
            await self.deliver([Event.from_row(row) for row in rows])
            for row in rows:
                row.published_at = utcnow()
        return len(rows)

    async def run(self) -> None:
        """Receive events from other processes until cancelled; the in-process bus has none to receive."""
        await asyncio.Event().wait()


class RedisEventBus(EventBus):
    """Fan events out through one Redis pub/sub channel to the subscribers of every process."""

    def __init__(self, redis: Redis, channel: str, *, buffer: int = SUBSCRIBER_BUFFER) -> None:
        super().__init__(buffer=buffer)
        self._redis = redis
        self.channel = channel
        self.listening = asyncio.Event()

    async def deliver(self, events: Sequence[Event]) -> None:
        # Every process, this one included, hands the events to its subscribers when Redis echoes
        # them back: once each. A failure leaves the rows unpublished, for the relay.
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.publish(self.channel, event.encode())
            await pipe.execute()

    async def run(self) -> None:
        """Hold this process's one subscription to the channel until cancelled, reconnecting after a failure."""
        failures = 0
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.listening.set()
                    failures = 0
                    await self._receive(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting or unreachable: wait, then subscribe again
                self.listening.clear()
                delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                failures += 1
                logger.warning("events.subscriber_disconnected", error=type(exc).__name__, retry_in=delay)
                await asyncio.sleep(delay)

    async def _receive(self, pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_SECONDS)
            if message is None or message.get("type") != "message":
                continue
            try:
                event = Event.decode(message["data"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                logger.warning("events.undecodable_message", channel=self.channel)
                continue
            self._fan_out(event)
