"""Rows of work done by attempts (a webhook delivery, an e-mail): leased, retried when due, re-sent when lost.

A row is PENDING until settled. An attempt takes it with a lease (`claim`): no other attempt takes
it until the lease ends, so a worker that dies mid-attempt gives it up by itself. `take_due` hands the
re-drive job the rows whose (next) attempt is due and that were not put on the queue lately.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domains.common.base import UTCDateTime, utcnow

PENDING = "PENDING"
ERROR_MAX_LENGTH = 200


class Attempted:
    """The columns of a row worked on by attempts (a declarative mixin)."""

    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(ERROR_MAX_LENGTH))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When it was last put on the task queue: a due row is put on it again only after a while.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # While an attempt runs, no other takes the row; a worker that dies holds it until then.
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def _due(model: Any, now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        model.status == PENDING,
        model.next_attempt_at <= now,
        or_(model.locked_until.is_(None), model.locked_until <= now),
    )


async def claim(session: AsyncSession, model: Any, row_id: int, *, now: datetime, until: datetime) -> bool:
    """Take a due, pending row for one attempt until `until`, unless another attempt holds it; whether taken."""
    result: Any = await session.execute(
        update(model).where(model.id == row_id, *_due(model, now)).values(locked_until=until)
    )
    return bool(result.rowcount == 1)


async def take_due(
    session: AsyncSession, model: Any, *, now: datetime, dispatched_before: datetime, limit: int
) -> list[int]:
    """Due rows not put on the queue since `dispatched_before`, oldest due first; marked put on it now."""
    stmt = (
        select(model.id)
        .where(*_due(model, now), or_(model.dispatched_at.is_(None), model.dispatched_at <= dispatched_before))
        .order_by(model.next_attempt_at, model.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.execute(stmt)).scalars())
    if ids:
        await session.execute(update(model).where(model.id.in_(ids)).values(dispatched_at=now))
    return ids


async def purge_settled(session: AsyncSession, model: Any, *, created_before: datetime) -> int:
    """Delete the settled (no longer pending) rows created before a time; return how many."""
    stmt = delete(model).where(model.status != PENDING, model.created_at < created_before)
    result: Any = await session.execute(stmt)
    return int(result.rowcount or 0)


def settle(row: Attempted, status: str, *, error: str | None) -> None:
    """Record one more attempt on a row that is now `status` (retries set `next_attempt_at` afterwards)."""
    row.attempts += 1
    row.locked_until = None
    row.last_error = (error or "")[:ERROR_MAX_LENGTH] or None
    row.status = status
    row.next_attempt_at = None


def retry_at(row: Attempted, when: datetime) -> None:
    """Leave a row pending for another attempt at `when`; the re-drive puts it on the queue then."""
    row.status = PENDING
    row.next_attempt_at = when
    row.dispatched_at = None  # nothing is on the queue for it now


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try a failed delivery again, and when to give up."""

    max_attempts: int = 10
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    disable_after: timedelta = timedelta(hours=24)
    jitter: float = 0.25  # each delay is shortened by up to this fraction, at random

    def delay(self, attempts: int, *, rng: random.Random | None = None) -> timedelta:
        """The wait after the `attempts`-th failed attempt: base * 2^(attempts-1), capped, with jitter."""
        exponential = self.base_delay * (2 ** max(attempts - 1, 0))
        capped = min(exponential, self.max_delay)
        shortened: timedelta = capped * (1 - self.jitter * (rng or _RANDOM).random())
        return shortened


_RANDOM = random.SystemRandom()
