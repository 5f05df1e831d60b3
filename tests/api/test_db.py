"""RequestDb: reads in autocommit, units of work in a real transaction, on both databases."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.db import RequestDb, create_engine, create_sessionmaker
from api.settings import Settings
from domains.products.models import Category


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


async def _categories(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Category)) or 0)


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
