"""Engine and session factories: asyncpg or aiosqlite, with the pool the settings size."""

import time
from typing import Any

import orjson
from sqlalchemy import Connection, event, make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from api.settings import Settings

_CHECKED_IN = "storefront.checked_in"  # when the pool last took the connection back (time.monotonic)


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
            json_deserializer=orjson.loads,
            connect_args={"timeout": busy_ms / 1000},
            **_sqlite_pool_options(settings),
        )
        _configure_sqlite(engine, busy_ms)
        return engine
    engine = create_async_engine(
        url,
        echo=settings.db_echo,
        # JSON columns (a user's roles) are decoded once per row: orjson does it in a third of json's time.
        json_deserializer=orjson.loads,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
    )
    if settings.db_pool_pre_ping:
        ping = _PingOnCheckout(settings.db_pool_ping_idle_seconds)
        event.listen(engine.sync_engine, "checkin", ping.checked_in)
        event.listen(engine.sync_engine, "checkout", ping.checked_out)
    return engine


class _PingOnCheckout:
    """Test a pooled asyncpg connection idle for a while before it is lent: one simple-protocol `SELECT 1`.

    SQLAlchemy's own `pool_pre_ping` on asyncpg wraps its ping in a transaction (BEGIN, `;`,
    ROLLBACK: three round trips, for PgBouncer's transaction mode, which this service does not
    use): a tenth of a ProductById request's CPU in the benchmark. A connection the server has
    dropped (a restart, `pg_terminate_backend`, an idle timeout on the way) fails the ping; the
    pool then discards every connection older than now and lends a new one (up to three tries),
    as `pool_pre_ping` does.

    A connection given back less than `idle_seconds` ago is lent without a ping: under load every
    connection comes back within milliseconds, and its ping was a round trip per request (about
    a twentieth of a ProductById's CPU). A restart in that window fails the request that meets the
    dead connection, as it fails one whose statement was running; that error invalidates every
    older pooled connection at once, so the next requests get new ones.
    """

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds

    @staticmethod
    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_CHECKED_IN] = time.monotonic()

    def checked_out(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_CHECKED_IN)
        if returned is not None and time.monotonic() - returned < self.idle_seconds:
            return
        try:
            dbapi_connection.run_async(lambda connection: connection.execute("SELECT 1"))
        except Exception as exc:
            raise InvalidatePoolError(f"pooled connection failed its ping: {type(exc).__name__}") from exc


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
