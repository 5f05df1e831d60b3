"""Prepared reads: on asyncpg in autocommit they go to the driver and answer as SQLAlchemy would.

The same checks run on SQLite (every read through SQLAlchemy) and, with TEST_DATABASE_URL, on the
real PostgreSQL, where a prepared read must skip SQLAlchemy's execution and still give the same
rows, values and types (a UTCDateTime's processing, a JSON column, a Decimal, nulls).
"""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import pytest
from sqlalchemy import Select, column, event, select, table, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.pool import QueuePool
from structlog.testing import capture_logs

from api.db import create_engine, create_sessionmaker
from api.settings import Settings
from domains.common import reads
from domains.common.keyset import page_request
from domains.common.principal import ANONYMOUS
from domains.products import repository as products_repository
from domains.products.models import Product, Review
from domains.users import repository as users_repository
from schema.unit_of_work import RequestDb
from tests import factories


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


class ExecuteCalls:
    """Counts the statements that went through SQLAlchemy's `AsyncConnection.execute` (and runs them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        execute = AsyncConnection.execute

        async def counting(connection: AsyncConnection, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await execute(connection, *args, **kwargs)

        monkeypatch.setattr(AsyncConnection, "execute", counting)


async def _catalog(engine: AsyncEngine) -> list[int]:
    async with create_sessionmaker(engine)() as session:
        authors = [await factories.create_user(session, roles=("CUSTOMER", "STAFF")) for _ in range(3)]
        category = await factories.create_category(session)
        products = [
            await factories.create_product(session, category=category, price="12.30"),
            await factories.create_product(session, price="0.05"),  # no category: a row of nulls joined
        ]
        for author in authors:  # one review per customer and product
            await factories.create_review(session, product=products[0], author=author, rating=4)
        await session.commit()
        return [product.id for product in products]


async def _read_both_ways(db: RequestDb, ids: list[int]) -> tuple[Any, Any]:
    ordering = products_repository.NEWEST_REVIEWS_FIRST
    page = page_request(ordering, first=2, after=None, last=None, before=None)
    async with db.read() as session:
        products = await products_repository.get_products_by_ids(session, ANONYMOUS, ids)
        reviews = await products_repository.list_reviews_by_product_ids(session, ids, ordering, page)
    return products, reviews


def _is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.driver == "asyncpg"


async def test_a_prepared_read_answers_as_sqlalchemy_does(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    # given: products (one without a category) and a page of reviews with their author
    ids = await _catalog(engine)
    db = RequestDb(create_sessionmaker(engine)())
    calls = ExecuteCalls(monkeypatch)

    # when: read as the app reads (prepared), then with the driver's path turned off
    products, reviews = await _read_both_ways(db, [*ids, 10**9])
    through_driver = calls.count == 0
    with monkeypatch.context() as off:
        off.setattr(reads, "_driver_rows", _through_sqlalchemy)
        expected = await _read_both_ways(db, [*ids, 10**9])
    await db.close()

    # then: PostgreSQL answered from the driver, SQLite through SQLAlchemy, and both alike
    assert through_driver is _is_postgres(engine)
    assert (products, reviews) == expected
    assert sorted(product.id for product in products) == sorted(ids)
    with_category = next(product for product in products if product.id == ids[0])
    assert with_category.category is not None
    assert str(with_category.price) == "12.30"
    assert with_category.stock is None  # staff only: the anonymous statement leaves it out
    assert with_category.created_at.tzinfo is not None
    assert with_category.created_at.utcoffset() == timedelta(0)
    page = reviews[ids[0]]
    assert len(page) == 3  # two and the look-ahead row
    assert page[0].author is not None
    assert page[0].author.roles == ["CUSTOMER", "STAFF"]  # a JSON column, decoded
    assert ids[1] not in reviews


async def _through_sqlalchemy(*_arguments: Any) -> None:
    return None


async def test_an_empty_list_of_keys_reads_nothing(engine: AsyncEngine) -> None:
    await _catalog(engine)
    db = RequestDb(create_sessionmaker(engine)())
    async with db.read() as session:
        assert await products_repository.get_products_by_ids(session, ANONYMOUS, []) == []
    await db.close()


async def test_a_prepared_read_in_a_unit_of_work_goes_through_sqlalchemy(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a unit of work whose first statement is a prepared read (its transaction begins there)
    ids = await _catalog(engine)
    db = RequestDb(create_sessionmaker(engine)())
    calls = ExecuteCalls(monkeypatch)

    # when
    async with db.transaction() as session:
        products = await products_repository.get_products_by_ids(session, ANONYMOUS, ids)
        in_transaction = session.in_transaction()
    await db.close()

    # then: SQLAlchemy's adapter ran it, inside the transaction it began
    assert calls.count == 1
    assert in_transaction
    assert len(products) == len(ids)


async def test_a_failing_prepared_read_raises_sqlalchemys_error_and_the_session_reads_on(engine: AsyncEngine) -> None:
    # given: a prepared read of a table that does not exist
    missing = reads.Prepared(select(column("x")).select_from(table("no_such_table")))
    ids = await _catalog(engine)
    db = RequestDb(create_sessionmaker(engine)())

    # when / then: the error is SQLAlchemy's, as for any read, and the driver's failure is logged
    with capture_logs() as logs, pytest.raises(DBAPIError, match="no_such_table"):
        async with db.read() as session:
            await reads.select_rows(session, missing)
    failed = [log for log in logs if log["event"] == "reads.driver_failed"]
    assert len(failed) == (1 if _is_postgres(engine) else 0)

    # and the next read of the request still answers
    async with db.read() as session:
        products = await products_repository.get_products_by_ids(session, ANONYMOUS, ids)
    await db.close()
    assert len(products) == len(ids)


async def test_a_listener_on_every_statement_sees_prepared_reads_too(engine: AsyncEngine) -> None:
    ids = await _catalog(engine)
    seen: list[str] = []

    def record(*arguments: Any) -> None:
        seen.append(arguments[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        db = RequestDb(create_sessionmaker(engine)())
        async with db.read() as session:
            await products_repository.get_products_by_ids(session, ANONYMOUS, ids)
        await db.close()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert len([statement for statement in seen if "FROM product" in statement]) == 1


async def test_rows_no_value_of_which_needs_processing_come_as_the_driver_gives_them(engine: AsyncEngine) -> None:
    await _catalog(engine)
    statement = cast(Select[Any], select(column("id"), column("name")).select_from(table("category")))
    prepared = reads.Prepared(statement)
    async with create_sessionmaker(engine)() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        rows = await reads.select_rows(session, prepared)
        expected = (await session.execute(prepared.statement)).all()
    assert [tuple(row) for row in rows] == [tuple(row) for row in expected]
    assert len(rows) == 1


async def test_one_key_reads_what_a_list_of_keys_reads(engine: AsyncEngine) -> None:
    # given: a statement for one key (`= :ids`) beside the one for a list (`= ANY` / `IN`)
    ids = await _catalog(engine)
    db = RequestDb(create_sessionmaker(engine)())

    # when
    one = await _read_both_ways(db, ids[:1])
    both = await _read_both_ways(db, ids)
    await db.close()

    # then
    assert one[0] == [product for product in both[0] if product.id == ids[0]]
    assert one[1] == {ids[0]: both[1][ids[0]]}


async def test_reads_around_a_unit_of_work_use_its_transaction_inside_and_autocommit_after(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a request that has read (its connection checked out in autocommit and kept at hand)
    ids = await _catalog(engine)
    db = RequestDb(create_sessionmaker(engine)())
    async with db.read() as session:
        before = await products_repository.get_products_by_ids(session, ANONYMOUS, ids[:1])
    calls = ExecuteCalls(monkeypatch)

    # when: a unit of work changes the product and reads it back, then the request reads again
    async with db.transaction() as session:
        await session.execute(update(Product).where(Product.id == ids[0]).values(name="Renamed"))
        inside = await products_repository.get_products_by_ids(session, ANONYMOUS, ids[:1])
        in_transaction = session.in_transaction()
    through_sqlalchemy = calls.count
    async with db.read() as session:
        after = await products_repository.get_products_by_ids(session, ANONYMOUS, ids[:1])
    await db.close()

    # then: inside, the read ran in the unit of work's transaction and saw its change; after the
    # commit, reads are in autocommit again (straight to the driver on asyncpg)
    assert before[0].name != "Renamed"
    assert in_transaction
    assert inside[0].name == "Renamed"
    assert through_sqlalchemy == 1
    assert after[0].name == "Renamed"
    assert calls.count == (1 if _is_postgres(engine) else 2)


def _checked_out(engine: AsyncEngine) -> int:
    pool = engine.sync_engine.pool
    return pool.checkedout() if isinstance(pool, QueuePool) else 0


async def _autocommit(session: AsyncSession) -> bool:
    raw = await (await session.connection()).get_raw_connection()
    return bool(getattr(raw.dbapi_connection, "autocommit", False))


async def test_reads_hold_one_connection_outside_the_session_and_give_it_back(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    ids = await _catalog(engine)
    db = RequestDb(create_sessionmaker(engine)())
    calls = ExecuteCalls(monkeypatch)

    # when: a request's loaders read twice
    async with db.read() as session:
        products = await products_repository.get_products_by_ids(session, ANONYMOUS, ids)
        session_began = session.in_transaction()
        held_while_reading = _checked_out(engine)
    async with db.read() as session:
        again = await products_repository.get_products_by_ids(session, ANONYMOUS, ids[:1])
    held_between = _checked_out(engine)
    await db.close()

    # then: on PostgreSQL one of the pool's connections, the session never began; SQLite reads on the
    # session's own. Either way one connection while the request reads, none once it is closed.
    assert session_began is not _is_postgres(engine)
    assert calls.count == (0 if _is_postgres(engine) else 2)
    if isinstance(engine.sync_engine.pool, QueuePool):
        assert held_while_reading == held_between == 1
    assert _checked_out(engine) == 0
    assert len(products) == len(ids)
    assert again == [product for product in products if product.id == ids[0]]


async def test_an_orm_read_after_a_prepared_one_swaps_to_the_sessions_connection_in_autocommit(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a request that has read a prepared statement
    ids = await _catalog(engine)
    author_ids = list(await _author_ids(engine, ids[0]))
    db = RequestDb(create_sessionmaker(engine)())
    async with db.read() as session:
        await products_repository.get_products_by_ids(session, ANONYMOUS, ids)

    # when: the same request reads through the ORM, a select that is not prepared, then prepared again
    calls = ExecuteCalls(monkeypatch)
    async with db.read() as session:
        product = await session.get(Product, ids[0])
        users = await users_repository.get_users_by_ids(session, author_ids)
        through_sqlalchemy = calls.count
        products = await products_repository.get_products_by_ids(session, ANONYMOUS, ids)
        autocommit = await _autocommit(session)
        held = _checked_out(engine)
    await db.close()

    # then: still one connection, the session's own now, in autocommit (no transaction left open on
    # it), and prepared reads go on straight to the driver on PostgreSQL
    assert product is not None
    assert product.id == ids[0]
    assert sorted(user.id for user in users) == sorted(author_ids)
    assert len(products) == len(ids)
    if _is_postgres(engine):
        assert autocommit
        assert calls.count == through_sqlalchemy == 1  # the users' select; the ORM's get is the session's
    if isinstance(engine.sync_engine.pool, QueuePool):
        assert held == 1
    assert _checked_out(engine) == 0


async def _author_ids(engine: AsyncEngine, product_id: int) -> set[int]:
    async with create_sessionmaker(engine)() as session:
        rows = await session.execute(select(Review.user_id).where(Review.product_id == product_id))
        return {user_id for (user_id,) in rows}


async def test_a_driver_failure_on_a_pooled_connection_discards_it(engine: AsyncEngine) -> None:
    # given: a read that fails in the driver (a table that does not exist)
    missing = reads.Prepared(select(column("x")).select_from(table("no_such_table")))
    db = RequestDb(create_sessionmaker(engine)())
    invalidated: list[Any] = []
    event.listen(engine.sync_engine, "invalidate", lambda *arguments: invalidated.append(arguments[0]))

    # when
    with pytest.raises(DBAPIError):
        async with db.read() as session:
            await reads.select_rows(session, missing)
    await db.close()

    # then: on PostgreSQL the pool's connection it ran on is discarded (SQLAlchemy ran it again on the
    # session's own, which raised); nothing stays checked out
    assert len(invalidated) == (1 if _is_postgres(engine) else 0)
    assert _checked_out(engine) == 0
