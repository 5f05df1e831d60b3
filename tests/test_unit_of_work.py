"""A unit of work publishes its events only after it commits: never for a rollback or a cancellation."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.app import create_app
from api.db import create_engine, create_sessionmaker
from api.settings import Settings
from domains.common.base import utcnow
from domains.common.faults import DatabaseUnavailableError
from domains.common.ids import encode_global_id
from domains.common.outbox import PENDING_EVENTS, OutboxEvent, record_event
from domains.products.models import Category, Product
from schema.events import EventStream
from schema.unit_of_work import RequestDb
from tests import factories
from tests.auth import Account, bearer
from tests.conftest import migrate
from tests.graphql import error_codes, gql
from tests.orders.conftest import lines, place

Recorded = list[tuple[str, dict[str, Any]]]


class Publisher:
    """An `on_commit` hook that records what it is handed and whether the change was committed by then."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, fail: bool = False) -> None:
        self.calls: list[Recorded] = []
        self.rows_committed_at_call: list[int] = []
        self._sessionmaker = sessionmaker
        self._fail = fail

    async def __call__(self, session: AsyncSession, events: Sequence[OutboxEvent]) -> None:
        self.calls.append([(event.topic, event.payload) for event in events])
        self.rows_committed_at_call.append(await _outbox_rows(self._sessionmaker))
        if self._fail:
            # Marks the rows published, then fails before committing that (a broker gone mid-way).
            await session.execute(update(OutboxEvent).values(published_at=utcnow()))
            raise RuntimeError("broker down")


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


async def _outbox_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


async def _categories(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Category)) or 0)


async def _create_category(db: RequestDb, slug: str, *, fail: bool = False) -> Category:
    async with db.transaction() as session:
        category = Category(name=slug.title(), slug=slug, description="")
        session.add(category)
        record_event(session, "CategoryCreated", {"slug": slug})
        await session.flush()
        if fail:
            raise RuntimeError("midway")
    return category


async def test_a_unit_of_work_that_commits_publishes_its_events_once_after_the_commit(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # given
    published = Publisher(sessionmaker)
    db = RequestDb(sessionmaker(), on_commit=published)

    # when
    await _create_category(db, "tea")
    await db.close()

    # then: handed the event once, when its row was already committed
    assert published.calls == [[("CategoryCreated", {"slug": "tea"})]]
    assert published.rows_committed_at_call == [1]
    assert (await _outbox_rows(sessionmaker), await _categories(sessionmaker)) == (1, 1)


async def test_a_unit_of_work_that_rolls_back_publishes_nothing_and_leaves_no_outbox_row(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # given
    published = Publisher(sessionmaker)
    db = RequestDb(sessionmaker(), on_commit=published)

    # when
    with pytest.raises(RuntimeError, match="midway"):
        await _create_category(db, "tea", fail=True)
    rolled_back = not db._session.in_transaction()
    await db.close()

    # then: rolled back at once, not only when the request ends
    assert published.calls == []
    assert rolled_back
    assert (await _outbox_rows(sessionmaker), await _categories(sessionmaker)) == (0, 0)


async def test_a_failed_unit_of_work_leaves_nothing_for_the_next_one_to_publish(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # given: a request whose first unit of work failed
    published = Publisher(sessionmaker)
    db = RequestDb(sessionmaker(), on_commit=published)
    with pytest.raises(RuntimeError, match="midway"):
        await _create_category(db, "tea", fail=True)

    # when: its next one commits
    await _create_category(db, "coffee")
    await db.close()

    # then: only the committed change's event is published
    assert published.calls == [[("CategoryCreated", {"slug": "coffee"})]]
    assert await _outbox_rows(sessionmaker) == 1


async def test_a_cancelled_unit_of_work_publishes_nothing_then_or_later(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # given: a unit of work that has recorded an event and is waiting (on a slow statement, say)
    published = Publisher(sessionmaker)
    db = RequestDb(sessionmaker(), on_commit=published)
    recorded = asyncio.Event()

    async def slow_write() -> None:
        async with db.transaction() as session:
            session.add(Category(name="Tea", slug="tea", description=""))
            record_event(session, "CategoryCreated", {"slug": "tea"})
            await session.flush()
            recorded.set()
            await asyncio.Event().wait()

    # when: the operation's ceiling cancels it; the request ends (close), and a later unit of work commits
    task = asyncio.create_task(slow_write())
    await recorded.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pending_after_cancel = db._session.info.get(PENDING_EVENTS)
    await db.close()
    after_close = (await _outbox_rows(sessionmaker), await _categories(sessionmaker))
    await _create_category(db, "coffee")
    await db.close()

    # then
    assert pending_after_cancel is None
    assert after_close == (0, 0)
    assert published.calls == [[("CategoryCreated", {"slug": "coffee"})]]


async def test_a_unit_of_work_without_events_publishes_nothing(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    # given
    published = Publisher(sessionmaker)
    db = RequestDb(sessionmaker(), on_commit=published)

    # when
    async with db.transaction() as session:
        session.add(Category(name="Tea", slug="tea", description=""))
    await db.close()

    # then
    assert published.calls == []
    assert await _categories(sessionmaker) == 1


async def test_a_failed_publish_keeps_the_commit_and_leaves_the_rows_to_the_relay(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # given: a publisher that fails half-way
    published = Publisher(sessionmaker, fail=True)
    db = RequestDb(sessionmaker(), on_commit=published)

    # when: the unit of work does not fail with it
    category = await _create_category(db, "tea")
    rolled_back = not db._session.in_transaction()
    async with db.read() as session:
        read_after = await session.scalar(select(Category.name).where(Category.slug == "tea"))
    await db.close()

    # then: the change and its outbox row are committed; the row is still unpublished; what the mutation
    # answers with is still as committed (not expired: reading it would need the database), and the
    # request's session reads on
    assert len(published.calls) == 1
    assert rolled_back
    assert (category.name, category.slug) == ("Tea", "tea")
    assert read_after == "Tea"
    async with sessionmaker() as session:
        published_at = (await session.execute(select(OutboxEvent.published_at))).scalars().all()
    assert published_at == [None]
    assert await _categories(sessionmaker) == 1


async def test_a_unit_of_work_without_a_publisher_still_commits_its_outbox_rows(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # given
    db = RequestDb(sessionmaker())

    # when
    await _create_category(db, "tea")
    pending = db._session.info.get(PENDING_EVENTS)
    await db.close()

    # then: the relay publishes it later
    assert pending is None
    assert await _outbox_rows(sessionmaker) == 1


def _pool_timeouts() -> float:
    return REGISTRY.get_sample_value("db_pool_timeouts_total") or 0.0


@pytest.mark.parametrize("use", ["read", "transaction"])
async def test_waiting_too_long_for_a_pooled_connection_is_counted(settings: Settings, use: str) -> None:
    # given: a pool of one connection, held by someone else
    tiny = settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout": 0.1})
    engine = create_engine(tiny)
    sessionmaker = create_sessionmaker(engine)
    db = RequestDb(sessionmaker())
    before = _pool_timeouts()
    try:
        async with engine.connect():
            # when
            with pytest.raises(DatabaseUnavailableError) as raised:
                async with db.read() if use == "read" else db.transaction() as session:
                    await session.execute(select(1))
    finally:
        await db.close()
        await engine.dispose()

    # then: counted, and told to the client as the database being busy
    assert _pool_timeouts() == before + 1
    assert raised.value.state == "busy"
    assert isinstance(raised.value.__cause__, PoolTimeoutError)


async def test_reads_of_concurrent_tasks_take_turns_on_the_session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # given
    db = RequestDb(sessionmaker())
    trace: list[str] = []

    async def reader(name: str) -> None:
        async with db.read() as session:
            trace.append(f"{name} in")
            await session.execute(select(1))
            await asyncio.sleep(0.01)
            trace.append(f"{name} out")

    # when
    await asyncio.gather(reader("a"), reader("b"))
    await db.close()

    # then
    assert trace == ["a in", "a out", "b in", "b out"]


ORDER_PLACE = """
mutation ($items: [OrderLineInput!]!) {
  orderPlace(input: {items: $items}) { order { id } userErrors { field code } }
}
"""
ADJUST_THEN_ORDER = """
mutation ($product: ID!, $items: [OrderLineInput!]!) {
  adjusted: productStockAdjust(input: {productId: $product, delta: 1}) { product { stock } }
  placed: orderPlace(input: {items: $items}) { order { id } userErrors { field code } }
}
"""


def _published(stream: EventStream) -> list[str]:
    return [event.topic for event in stream.pending()]


async def test_a_mutation_answered_with_user_errors_records_and_publishes_nothing(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, customer: Account
) -> None:
    # given: the first line can be served, the second cannot (its stock is taken, then given back)
    plenty = await factories.create_product(db_session, stock=10)
    scarce = await factories.create_product(db_session, stock=1)
    await db_session.commit()

    # when
    async with app.state.events.subscribe() as bus:
        data = await gql(client, ORDER_PLACE, {"items": lines((plenty.id, 2), (scarce.id, 2))}, customer.headers)

    # then
    assert data["orderPlace"]["userErrors"] == [{"field": ["input", "items", "1", "quantity"], "code": "OUT_OF_STOCK"}]
    assert _published(bus) == []
    assert await factories.recorded_events(db_session) == []
    assert (await _stock(db_session, plenty.id), await _stock(db_session, scarce.id)) == (10, 1)


async def test_a_failed_field_publishes_nothing_while_the_field_before_it_publishes_its_own(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    product = await factories.create_product(db_session, stock=1)
    await db_session.commit()
    variables = {"product": encode_global_id("Product", product.id), "items": lines((product.id, 5))}

    # when: one request adjusts the stock (commits), then orders more than there is (rolls back)
    async with app.state.events.subscribe() as bus:
        data = await gql(client, ADJUST_THEN_ORDER, variables, staff.headers)

    # then
    assert data["adjusted"]["product"] == {"stock": 2}
    assert data["placed"]["userErrors"] == [{"field": ["input", "items", "0", "quantity"], "code": "OUT_OF_STOCK"}]
    assert _published(bus) == ["ProductStockAdjusted"]
    assert [topic for topic, _ in await factories.recorded_events(db_session)] == ["ProductStockAdjusted"]


async def _stock(session: AsyncSession, product_id: int) -> int:
    return int(await session.scalar(select(Product.stock).where(Product.id == product_id)) or 0)


async def test_a_read_after_a_release_runs_in_autocommit_again(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    # given: a request that read, then gave its connection back
    db = RequestDb(sessionmaker())
    async with db.read() as session:
        await session.execute(select(1))
    await db.release()

    # when
    async with db.read() as session:
        options = (await session.connection()).sync_connection.get_execution_options()  # type: ignore[union-attr]
    await db.close()

    # then
    assert options.get("isolation_level") == "AUTOCOMMIT"


async def _hand_on_nothing(session: AsyncSession, events: Sequence[OutboxEvent]) -> None:
    pass


async def test_sqlite_writers_of_one_process_wait_their_turn_instead_of_the_busy_timeout(
    settings: Settings, tmp_path: Path
) -> None:
    # given: a SQLite database whose busy timeout is far shorter than thirty writers take, 10 units and
    # thirty buyers (in the PostgreSQL run too: this is SQLite's own queue)
    url = f"sqlite+aiosqlite:///{tmp_path / 'writers.db'}"
    await asyncio.to_thread(migrate, url)
    sqlite = settings.model_copy(update={"database_url": url, "sqlite_busy_timeout_ms": 100})
    engine = create_engine(sqlite)
    try:
        async with create_sessionmaker(engine)() as session:
            product = await factories.create_product(session, stock=10)
            buyers = [await factories.create_user(session) for _ in range(30)]
            await session.commit()
        app = create_app(sqlite)
        async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
            # Only the requests write: the events of their orders are not handed on to the in-process task
            # queue, whose tasks write outside the requests' turns, on SQLite's busy timeout.
            app.state.after_commit = _hand_on_nothing
            # when: all order one unit at once
            one_each = lines((product.id, 1))
            bodies = await asyncio.gather(*(place(http, bearer(app, buyer), one_each) for buyer in buyers))
        async with create_sessionmaker(engine)() as session:
            stock = await session.scalar(select(Product.stock).where(Product.id == product.id))
    finally:
        await engine.dispose()

    # then: no writer gave up on the lock; ten placed, twenty told the stock ran out
    assert [error_codes(body) for body in bodies] == [[]] * 30
    placed = [body for body in bodies if body["data"]["orderPlace"]["order"]]
    assert len(placed) == 10
    assert stock == 0
