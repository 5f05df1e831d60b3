"""The request's unit of work: its only database session, used by one task at a time."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from types import TracebackType
from weakref import WeakKeyDictionary

import structlog
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.faults import DatabaseUnavailableError, database_state
from domains.common.outbox import OutboxEvent, take_pending_events
from domains.common.reads import begin_reads, end_reads
from schema import metrics

logger = structlog.get_logger("schema.unit_of_work")

PublishCommitted = Callable[[AsyncSession, Sequence[OutboxEvent]], Awaitable[None]]


def _unavailable(exc: Exception) -> DatabaseUnavailableError | None:
    """The database being busy or unreachable, as DatabaseUnavailableError (SERVICE_UNAVAILABLE); else None.

    Logged here, one line without a traceback: the error is the database's state, not a fault of
    ours, and an outage would otherwise write a traceback per request.
    """
    if isinstance(exc, PoolTimeoutError):
        metrics.DB_POOL_TIMEOUTS.inc()
    state = database_state(exc)
    if state is None:
        return None
    metrics.DB_UNAVAILABLE.labels(state).inc()
    # The driver's own words only: SQLAlchemy's message adds the statement and its parameters.
    detail = str(exc.orig if isinstance(exc, DBAPIError) else exc)[:200]
    logger.warning("db.unavailable", state=state, error=type(exc).__name__, detail=detail)
    return DatabaseUnavailableError(state)


@asynccontextmanager
async def _database_faults() -> AsyncIterator[None]:
    """Raise the database being busy or unreachable as DatabaseUnavailableError (`_unavailable`)."""
    try:
        yield
    except Exception as exc:
        unavailable = _unavailable(exc)
        if unavailable is None:
            raise
        raise unavailable from exc


# SQLite takes one writer at a time. Its own queue is the busy timeout: a waiting writer sleeps and
# retries, and under fifty concurrent writers on a starved machine some wait past it and fail. In one
# process, writers wait their turn here instead, in order, cancellable by the operation's ceiling.
_sqlite_writers: "WeakKeyDictionary[Engine, asyncio.Lock]" = WeakKeyDictionary()


def _writers_turn(session: AsyncSession) -> AbstractAsyncContextManager[object]:
    """The process's queue of writers to this session's SQLite database; nothing to wait for on PostgreSQL."""
    engine = session.sync_session.get_bind()
    if not isinstance(engine, Engine) or engine.dialect.name != "sqlite":
        return nullcontext()
    queue = _sqlite_writers.get(engine)
    if queue is None:
        queue = _sqlite_writers[engine] = asyncio.Lock()
    return queue


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

    def read(self) -> AbstractAsyncContextManager[AsyncSession]:
        """Lend the session for reads; its connection stays checked out until `release()` or `close()`.

        Reads run in autocommit: under READ COMMITTED every statement takes its own snapshot
        anyway, and it spares each request a BEGIN and a ROLLBACK round trip.
        """
        return _Read(self)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Lend the session for one unit of work: commit on success, roll back on any error."""
        async with self._lock, _database_faults():
            if self._reading:
                # Give back the autocommit connection: the unit of work gets a transactional one. Given
                # back before waiting for a writer's turn: writers waiting while holding connections
                # would leave the one whose turn it is none to write with.
                await self._close()
            async with _writers_turn(self._session):
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
                        # The session is closed, not rolled back: a rollback would expire the committed objects
                        # the mutation answers with (and reading them again would fail the answer), while a
                        # close detaches them as they are and leaves the session usable for the payload's reads.
                        logger.exception("events.publish_failed", events=len(events))
                        await self._discard()

    async def release(self) -> None:
        """Give the read connection back to the pool now; the next `read()` checks one out again.

        For a request about to do slow work that needs no database (hashing a password): a pooled
        connection held idle through it is one that other requests wait for.
        """
        async with self._lock:
            if self._reading:
                await self._close()

    async def close(self) -> None:
        """Release the connection; never commits.

        Waits for a read in flight (a loader's batch an operation cut short left running): closed under
        it, the batch's next statement would open a transaction on a new connection that nobody ends,
        holding its locks.
        """
        async with self._lock:
            if self._reading or self._session.in_transaction():
                await self._close()  # else it holds no connection (never used, or released): nothing to give back

    async def _failed_read(self, exc: BaseException) -> BaseException:
        """What a read that raised `exc` raises: the database away as DatabaseUnavailableError, else `exc`.

        With the database away the connection may be dead: it is given back (the pool discards an
        invalidated one), so that the request's next read checks one out afresh instead of failing on it.
        """
        if not isinstance(exc, Exception):
            return exc  # a cancellation: the request ends, and `close()` gives the connection back
        unavailable = exc if isinstance(exc, DatabaseUnavailableError) else _unavailable(exc)
        if unavailable is None:
            return exc
        await self._discard()
        return unavailable

    async def _discard(self) -> None:
        self._reading = False
        for give_back in (end_reads, AsyncSession.close):
            try:
                await give_back(self._session)
            except Exception as exc:  # resetting the connection failed too: the database is still away
                logger.warning("db.discard_failed", error=type(exc).__name__)

    async def _close(self) -> None:
        self._reading = False
        await end_reads(self._session, close=True)


class _Read:
    """`RequestDb.read()`: the lock, the reads' connection checked out by the first, the database's faults.

    A class rather than generator-based context managers: two async generators per read, each
    registered with the event loop, cost 3.2 us against 0.4 (a TopProducts request makes three reads).
    """

    __slots__ = ("db",)

    def __init__(self, db: RequestDb) -> None:
        self.db = db

    async def __aenter__(self) -> AsyncSession:
        db = self.db
        await db._lock.acquire()
        try:
            if not db._reading:
                await begin_reads(db._session)
                db._reading = True
        except BaseException as exc:
            try:
                raised = await db._failed_read(exc)
            finally:
                db._lock.release()
            if raised is exc:
                raise
            raise raised from exc
        return db._session

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        db = self.db
        try:
            raised = None if exc is None else await db._failed_read(exc)
        finally:
            db._lock.release()
        if raised is not None and raised is not exc:
            raise raised from exc
