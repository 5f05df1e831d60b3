"""The transactional outbox: domain events are rows written in the same transaction as the change.

`record_event` adds the row; `RequestDb.transaction()` publishes the transaction's events after
it commits (and drops them when it rolls back). A row left unpublished, because the process died
right after the commit, is published later by the relay (`schema/events.py`, run by `api/events.py`).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
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
