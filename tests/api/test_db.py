"""RequestDb: reads in autocommit, units of work in a real transaction, on both databases."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import QueuePool

from api.db import create_engine, create_sessionmaker
from api.settings import Settings
from domains.common.faults import DatabaseUnavailableError
from domains.products.models import Category
from schema.unit_of_work import RequestDb


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


async def _categories(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Category)) or 0)


def _checked_out(engine: AsyncEngine) -> int:
    assert isinstance(engine.pool, QueuePool)
    return engine.pool.checkedout()


async def _write_then_fail(db: RequestDb) -> None:
    async with db.transaction() as session:
        session.add(Category(name="Lost", slug="lost", description=""))
        await session.flush()
        raise RuntimeError("midway")


async def test_a_unit_of_work_after_reads_is_atomic(engine: AsyncEngine) -> None:
    # given: a request that has read (on its autocommit connection)
    sessionmaker = create_sessionmaker(engine)
    db = RequestDb(sessionmaker())
    async with db.read() as session:
        await session.execute(select(func.count()).select_from(Category))

    # when: its unit of work fails after writing
    with pytest.raises(RuntimeError, match="midway"):
        await _write_then_fail(db)
    await db.close()

    # then: nothing of it remains
    assert await _categories(sessionmaker) == 0


async def test_reads_after_a_unit_of_work_see_what_it_committed(engine: AsyncEngine) -> None:
    # given
    sessionmaker = create_sessionmaker(engine)
    db = RequestDb(sessionmaker())
    async with db.read() as session:
        before = await session.scalar(select(func.count()).select_from(Category))

    # when
    async with db.transaction() as session:
        session.add(Category(name="Kept", slug="kept", description=""))
    async with db.read() as session:
        after = await session.scalar(select(func.count()).select_from(Category))
    await db.close()

    # then
    assert (before, after) == (0, 1)
    assert await _categories(sessionmaker) == 1


async def test_release_gives_the_read_connection_back_until_the_next_read(engine: AsyncEngine) -> None:
    # given: a request that has read, so its autocommit connection is checked out
    sessionmaker = create_sessionmaker(engine)
    db = RequestDb(sessionmaker())
    async with db.read() as session:
        await session.execute(select(func.count()).select_from(Category))
    held_after_read = _checked_out(engine)

    # when: it releases, then reads again
    await db.release()
    held_after_release = _checked_out(engine)
    async with db.read() as session:
        again = await session.scalar(select(func.count()).select_from(Category))
    held_after_second_read = _checked_out(engine)
    await db.close()

    # then
    assert (held_after_read, held_after_release, held_after_second_read) == (1, 0, 1)
    assert again == 0
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_release_without_a_read_holds_nothing_and_a_unit_of_work_still_commits(engine: AsyncEngine) -> None:
    # given
    sessionmaker = create_sessionmaker(engine)
    db = RequestDb(sessionmaker())

    # when
    await db.release()
    async with db.transaction() as session:
        session.add(Category(name="Kept", slug="kept", description=""))
    await db.release()

    # then
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await _categories(sessionmaker) == 1
    await db.close()


async def test_close_waits_for_a_read_in_flight_and_leaves_no_transaction_open(engine: AsyncEngine) -> None:
    # given: a loader's batch reading in two statements, left running by an operation cut short
    db = RequestDb(create_sessionmaker(engine)())
    between = asyncio.Event()
    go_on = asyncio.Event()

    async def batch() -> int:
        async with db.read() as session:
            await session.execute(select(func.count()).select_from(Category))
            between.set()
            await go_on.wait()
            return int(await session.scalar(select(func.count()).select_from(Category)) or 0)

    reading = asyncio.create_task(batch())
    await between.wait()

    # when: the request closes its unit of work between the batch's statements
    closing = asyncio.create_task(db.close())
    await asyncio.sleep(0.1)
    closed_early = closing.done()
    go_on.set()
    count = await reading
    await closing

    # then: the close waited for the batch, and nothing is left checked out (closed under it, the
    # batch's second statement would have begun a transaction on a connection nobody gives back)
    assert not closed_early
    assert count == 0
    assert _checked_out(engine) == 0


def test_a_file_database_gets_the_pool_the_settings_size(settings: Settings) -> None:
    # given
    small = settings.model_copy(update={"db_pool_size": 2, "db_max_overflow": 1, "db_pool_timeout": 3.0})

    # when
    engine = create_engine(small)

    # then: SQLite as well as PostgreSQL
    assert isinstance(engine.pool, QueuePool)
    assert (engine.pool.size(), engine.pool._max_overflow, engine.pool.timeout()) == (2, 1, 3.0)


async def _backend_pid(engine: AsyncEngine) -> int:
    db = RequestDb(create_sessionmaker(engine)())
    try:
        async with db.read() as session:
            return int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)
    finally:
        await db.close()


async def _terminate(engine: AsyncEngine, pid: int) -> None:
    """Close a backend from the server's side, as a restart does, and wait until it is gone."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(100):
            # pg_stat_activity is a snapshot taken once per transaction: end it, or the backend stays listed.
            await connection.rollback()
            alive = await connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
            if not alive:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"backend {pid} outlived pg_terminate_backend")


@pytest.mark.parametrize(
    ("pre_ping", "idle_seconds", "pinged"),
    [
        (True, 0.0, True),  # every checkout pings
        (True, 0.2, True),  # the connection waits past the idle threshold (the terminate takes longer)
        (True, 60.0, False),  # given back moments ago: lent without a ping
        (False, 0.0, False),
    ],
)
async def test_a_pooled_connection_the_server_closed_is_replaced_before_use_when_pinged(
    postgres_redis_settings: Settings, pre_ping: bool, idle_seconds: float, pinged: bool
) -> None:
    # given: a pooled connection whose backend the server then closes (one pool slot, so it is reused)
    settings = postgres_redis_settings.model_copy(
        update={
            "db_pool_pre_ping": pre_ping,
            "db_pool_ping_idle_seconds": idle_seconds,
            "db_pool_size": 1,
            "db_max_overflow": 0,
        }
    )
    engine, killer = create_engine(settings), create_engine(settings.model_copy(update={"db_pool_pre_ping": False}))
    try:
        first = await _backend_pid(engine)
        await _terminate(killer, first)
        await asyncio.sleep(idle_seconds if idle_seconds < 1 else 0)

        # when: the next read borrows it, and one more read after it
        outcome: int | Exception
        try:
            outcome = await _backend_pid(engine)
        except DatabaseUnavailableError as exc:
            outcome = exc
        after = await _backend_pid(engine)
    finally:
        await engine.dispose()
        await killer.dispose()

    # then: pinged, the read runs on a new backend; unpinged, the dead connection fails that read
    # (and only that one: the failure invalidates the pool, so the next read gets a new backend), which
    # the client is told as the database being unreachable (SERVICE_UNAVAILABLE), not an internal error
    if pinged:
        assert isinstance(outcome, int)
        assert outcome != first
    else:
        assert isinstance(outcome, DatabaseUnavailableError)
        assert outcome.state == "unreachable"
        assert isinstance(outcome.__cause__, DBAPIError)
        assert outcome.__cause__.connection_invalidated
    assert after != first
