"""Engine and session factories, and the request's single, serialised database session."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from starlette.requests import HTTPConnection

from api.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the process's engine: asyncpg with a sized pool, or aiosqlite for the embedded default."""
    url = settings.effective_database_url
    if settings.is_sqlite:
        engine = create_async_engine(
            url,
            echo=settings.db_echo,
            connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000},
        )
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
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


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the session factory; objects stay usable after commit (no lazy reloads)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class RequestDb:
    """The request's only AsyncSession, used by one task at a time.

    Strawberry resolves sibling fields concurrently and aiodataloader runs each batch in its
    own task, while an AsyncSession must never be used by two tasks at once. Every use goes
    through `read()` or `transaction()`, which hold a lock for the duration. The lock is not
    re-entrant: never await a loader while holding it.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._lock = asyncio.Lock()
        self._reading = False

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Lend the session for reads; its connection stays checked out until `close()`.

        Reads run in autocommit: under READ COMMITTED every statement takes its own snapshot
        anyway, and it spares each request a BEGIN and a ROLLBACK round trip.
        """
        async with self._lock:
            if not self._reading:
                await self._session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
                self._reading = True
            yield self._session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Lend the session for one unit of work: commit on success, roll back on any error."""
        async with self._lock:
            if self._reading:
                # Give back the autocommit connection: the unit of work gets a transactional one.
                await self._session.close()
                self._reading = False
            try:
                yield self._session
            except BaseException:
                await self._session.rollback()
                raise
            await self._session.commit()

    async def close(self) -> None:
        """Release the connection; never commits."""
        await self._session.close()


async def get_request_db(connection: HTTPConnection) -> AsyncIterator[RequestDb]:
    """Open the request's (or WebSocket's) session and always close it, also when a resolver raised."""
    db = RequestDb(connection.app.state.sessionmaker())
    try:
        yield db
    finally:
        await db.close()
