"""UTCDateTime: every timestamp comes back aware and in UTC, whatever the driver handed over."""

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.base import UTCDateTime
from domains.users.models import User
from tests import factories


def test_a_utc_timestamp_comes_back_as_it_is_and_others_in_utc() -> None:
    column = UTCDateTime()
    in_utc = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    elsewhere = datetime(2026, 12, 4, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    naive = in_utc.replace(tzinfo=None)  # SQLite keeps no zone: its values were stored in UTC

    assert column.process_result_value(in_utc, None) is in_utc
    converted = column.process_result_value(elsewhere, None)
    assert converted == in_utc
    assert converted is not None
    assert converted.tzinfo is UTC
    from_sqlite = column.process_result_value(naive, None)
    assert from_sqlite == in_utc
    assert from_sqlite is not None
    assert from_sqlite.tzinfo is UTC
    assert column.process_result_value(None, None) is None


def test_no_processor_runs_per_value_on_asyncpg_and_one_does_on_sqlite() -> None:
    # asyncpg hands a timestamptz over aware and in UTC already; SQLite hands it over naive.
    asyncpg, aiosqlite = (make_url(url).get_dialect()() for url in ("postgresql+asyncpg://", "sqlite+aiosqlite://"))
    assert UTCDateTime().result_processor(asyncpg, None) is None
    assert UTCDateTime().result_processor(aiosqlite, None) is not None


async def test_a_stored_timestamp_reads_back_aware_and_in_utc(db_session: AsyncSession) -> None:
    user = await factories.create_user(db_session)
    await db_session.commit()
    written = datetime(2026, 12, 4, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    await db_session.execute(update(User).where(User.id == user.id).values(created_at=written))
    read = await db_session.scalar(select(User.created_at).where(User.id == user.id))
    assert read == written
    assert read is not None
    assert read.tzinfo is UTC
    assert read.hour == 7
