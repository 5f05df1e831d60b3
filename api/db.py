"""Engine and session factories, and the request's single, serialised database session."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog
from sqlalchemy import Connection, event, make_url
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from starlette.requests import HTTPConnection

from api import metrics
from api.settings import Settings
from domains.common.outbox import OutboxEvent, take_pending_events

logger = structlog.get_logger("api.db")

PublishCommitted = Callable[[AsyncSession, Sequence[OutboxEvent]], Awaitable[None]]


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the process's engine: asyncpg or aiosqlite, each with the pool the settings size."""
    url = settings.effective_database_url
    if settings.is_sqlite:
        # A statement waiting on SQLite's lock cannot be cancelled (it waits in aiosqlite's thread),
        # so it must not wait past the operation's wall-clock ceiling.
        busy_ms = min(settings.sqlite_busy_timeout_ms, int(settings.operation_timeout_seconds * 1000))
        engine = create_async_engine(
            url,
            echo=settings.db_echo,
            connect_args={"timeout": busy_ms / 1000},
            **_sqlite_pool_options(settings),
        )
        _configure_sqlite(engine, busy_ms)
        return engine
    return create_async_engine(
        url,
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
    )


def _sqlite_pool_options(settings: Settings) -> dict[str, Any]:
    # A file database gets a queue pool as PostgreSQL does; without these its size and wait would be
    # SQLAlchemy's defaults (5 + 10, 30 s) whatever DB_POOL_SIZE and DB_POOL_TIMEOUT say. An
    # in-memory database lives in one shared connection (a StaticPool), which takes no sizes.
    url = make_url(settings.effective_database_url)
    if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
        return {}
    return {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
    }


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A write transaction takes SQLite's write lock up front (BEGIN IMMEDIATE), so concurrent
        # writers queue on the busy timeout. With the default deferred BEGIN, two transactions
        # that both read first then both write can deadlock, and SQLite answers one with
        # "database is locked" at once instead of waiting. Autocommit reads need no BEGIN at all.
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the session factory; objects stay usable after commit (no lazy reloads)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def _counting_pool_timeouts() -> AsyncIterator[None]:
    try:
        yield
    except PoolTimeoutError:
        metrics.DB_POOL_TIMEOUTS.inc()
        raise


class RequestDb:
    """The request's only AsyncSession, used by one task at a time.

    Strawberry resolves sibling fields concurrently and aiodataloader runs each batch in its
    own task, while an AsyncSession must never be used by two tasks at once. Every use goes
    through `read()` or `transaction()`, which hold a lock for the duration. The lock is not
    re-entrant: never await a loader while holding it.
    """

    def __init__(self, session: AsyncSession, *, on_commit: PublishCommitted | None = None) -> None:
        self._session = session
        self._lock = asyncio.Lock()
        self._reading = False
        self._on_commit = on_commit

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Lend the session for reads; its connection stays checked out until `release()` or `close()`.

        Reads run in autocommit: under READ COMMITTED every statement takes its own snapshot
        anyway, and it spares each request a BEGIN and a ROLLBACK round trip.
        """
        async with self._lock, _counting_pool_timeouts():
            if not self._reading:
                await self._session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
                self._reading = True
            yield self._session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Lend the session for one unit of work: commit on success, roll back on any error."""
        async with self._lock, _counting_pool_timeouts():
            if self._reading:
                # Give back the autocommit connection: the unit of work gets a transactional one.
                await self._session.close()
                self._reading = False
            try:
                yield self._session
            except asyncio.CancelledError:
                # Cancelled (the operation's wall-clock ceiling): answer now. Waiting for the rollback
                # could wait as long as the statement it interrupts (SQLite's busy timeout); `close()`
                # rolls back when the request ends.
                take_pending_events(self._session)
                raise
            except BaseException:
                take_pending_events(self._session)  # nothing is published for a rolled-back transaction
                await self._session.rollback()
                raise
            await self._session.commit()
            events = take_pending_events(self._session)
            if events and self._on_commit is not None:
                try:
                    await self._on_commit(self._session, events)
                except Exception:
                    # The change is committed; its outbox rows stay unpublished and the relay sends them.
                    logger.exception("events.publish_failed", events=len(events))
                    await self._session.rollback()

    async def release(self) -> None:
        """Give the read connection back to the pool now; the next `read()` checks one out again.

        For a request about to do slow work that needs no database (hashing a password): a pooled
        connection held idle through it is one that other requests wait for.
        """
        async with self._lock:
            if self._reading:
                await self._session.close()
                self._reading = False

    async def close(self) -> None:
        """Release the connection; never commits."""
        await self._session.close()


async def get_request_db(connection: HTTPConnection) -> AsyncIterator[RequestDb]:
    """Open the request's (or WebSocket's) session and always close it, also when a resolver raised."""
    state = connection.app.state
    db = RequestDb(state.sessionmaker(), on_commit=state.events.publish_committed)
    try:
        yield db
    finally:
        await db.close()
