"""The transactional outbox: domain events are rows written in the same transaction as the change.

`record_event` adds the row; `RequestDb.transaction()` hands the transaction's events on after it
commits (and drops them when it rolls back): to subscribers (`published_at`) and to the task queue
(`dispatched_at`), whose worker handles each once (`processed_at`: its webhook deliveries recorded).
A row left behind, because a process died right after the commit or a broker message was lost, is
published by the relay (`schema/events.py`) and put on the queue again by the re-drive job
(`tasks/jobs.py`): the rows are the source of truth, a lost message only delays.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domains.common.base import Base, UTCDateTime, utcnow

PENDING_EVENTS = "storefront.pending_events"


class OutboxEvent(Base):
    __tablename__ = "outbox_event"
    __table_args__ = (Index(None, "published_at", "id"), Index(None, "processed_at", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Handed to this process's and every other's subscribers (schema/events.py).
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Last put on the task queue, and handled there (its webhook deliveries and e-mails recorded): a row
    # not handled some time after it was put on the queue is put on it again (tasks/relay.py).
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


def record_event(session: AsyncSession, topic: str, payload: dict[str, Any]) -> None:
    """Write a domain event into the current transaction; it is published only if that commits."""
    event = OutboxEvent(topic=topic, payload=payload, created_at=utcnow())
    session.add(event)
    session.info.setdefault(PENDING_EVENTS, []).append(event)


def take_pending_events(session: AsyncSession) -> list[OutboxEvent]:
    """Take the events the session's transaction recorded (to publish after a commit, or to drop)."""
    events: list[OutboxEvent] = session.info.pop(PENDING_EVENTS, [])
    return events


async def mark_handed_on(session: AsyncSession, ids: Sequence[int], **when: datetime) -> None:
    """Mark rows published and/or dispatched (`published_at=...`, `dispatched_at=...`)."""
    if ids and when:
        await session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(**when))


async def take_undispatched(
    session: AsyncSession, *, now: datetime, dispatched_before: datetime, limit: int
) -> list[int]:
    """Rows not handled and not put on the queue since `dispatched_before`, oldest first; marked put on it now."""
    stmt = (
        select(OutboxEvent.id)
        .where(
            OutboxEvent.processed_at.is_(None),
            (OutboxEvent.dispatched_at.is_(None)) | (OutboxEvent.dispatched_at <= dispatched_before),
            OutboxEvent.created_at <= dispatched_before,
        )
        .order_by(OutboxEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.execute(stmt)).scalars())
    await mark_handed_on(session, ids, dispatched_at=now)
    return ids


async def take_for_handling(session: AsyncSession, event_id: int) -> OutboxEvent | None:
    """The row of an event not handled yet, locked until the transaction ends; None if handled (or purged)."""
    stmt = select(OutboxEvent).where(OutboxEvent.id == event_id, OutboxEvent.processed_at.is_(None)).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def oldest_unhandled(session: AsyncSession) -> datetime | None:
    """When the oldest row not handled yet was written; None when every row is handled."""
    stmt = select(OutboxEvent.created_at).where(OutboxEvent.processed_at.is_(None)).order_by(OutboxEvent.id).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def purge_handed_on(session: AsyncSession, *, created_before: datetime) -> int:
    """Delete rows published and handled that were written before a time; return how many."""
    result: Any = await session.execute(
        delete(OutboxEvent).where(
            OutboxEvent.created_at < created_before,
            OutboxEvent.processed_at.is_not(None),
            OutboxEvent.published_at.is_not(None),
        )
    )
    return int(result.rowcount or 0)
