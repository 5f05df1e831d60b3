"""Reads of plain columns, run as SQLAlchemy Core on the session's connection.

`session.execute` runs even a select of columns through the ORM's compile state and per-row
loading, made for entities: about a tenth of the CPU of a TopProducts request's two statements
with their views (300 review rows). `select_rows` runs them on the connection the session holds
(autocommit for reads, the unit of work's transaction for writes).

A statement the repository builds once and runs for every request with new values is `Prepared`.
On asyncpg, in a read (the connection in autocommit) with nothing listening to SQLAlchemy's
statements (an `echo`, a test counting them, a tracer), its SQL, compiled once by SQLAlchemy for
the dialect, goes straight to the driver's connection with its bind values, and comes back as the
driver's rows through the same result processors SQLAlchemy would apply (none for a timestamp,
which asyncpg hands over in UTC already; with none, its records are handed on as they are). On
every run SQLAlchemy's execution builds the statement's cache key, an execution context and a
result around the driver's call: half of the CPU of a one-row read. A statement whose SQL varies
with its values (an expanding `IN`) is not sent this way: `one_of` writes a list of keys as one
array on PostgreSQL instead. Should the driver's call fail, the same read runs again through
SQLAlchemy, which raises its own error for it and invalidates a dead connection, as for any read.

A unit of work opens its reads with `begin_reads` and gives their connection back with `end_reads`.
On asyncpg with nothing listening to statements, `begin_reads` checks a connection out of the
engine's pool by itself, not through the session: the session's checkout (its transaction, the
autocommit option set and reset, three greenlet hand-offs with its close) cost about five times a
pool checkout, a fifteenth of a ProductById request. Prepared reads go to that connection's driver,
outside any transaction (nothing but them uses it, so the adapter never begins one). Should the
session be asked for a connection while it is held (an ORM read, a statement that is not prepared),
its autobegin gives the held connection back and checks its own out in autocommit instead
(`_reads_swap`): a request never holds two. Elsewhere (SQLite, an `echo`, a listener) the session's
own connection is checked out in autocommit, as it always was, and kept at hand with its driver
connection (in `session.info`), so that each statement does not ask the session for them again.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import structlog
from sqlalchemy import ARRAY, ColumnElement, any_, bindparam, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import Executable, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

logger = structlog.get_logger("domains.common.reads")
# session.info key: the `_Held` connection a unit of work checked out for its reads.
_READS = "storefront.reads"
AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}

Processor = Callable[[Any], Any]


def one_of(column: Any, name: str, dialect_name: str, *, single: bool = False) -> ColumnElement[bool]:
    """`column IN (:name)` for a list of keys: one array on PostgreSQL (`= ANY`), `= :name` for one key.

    An expanding `IN` writes one placeholder per key, so its SQL (and the driver's prepared
    statement) differs with the number of keys; an array is one SQL text for every list. PostgreSQL
    plans `= ANY` anew on every run, though (its generic plan guesses ten elements), about twice the
    server's CPU of `= $1` for one key: a statement for one key (`single`, its value `keys_value`'s)
    keeps the plain comparison.
    """
    if single:
        return cast(ColumnElement[bool], column == bindparam(name))
    if dialect_name == "postgresql":
        return cast(ColumnElement[bool], column == any_(bindparam(name, type_=ARRAY(column.type))))
    return cast(ColumnElement[bool], column.in_(bindparam(name, expanding=True)))


def keys_value(keys: Sequence[Any], *, single: bool) -> Any:
    """The bind value of `one_of`'s parameter: the one key itself, or the list."""
    return keys[0] if single else list(keys)


def dialect_name(session: AsyncSession) -> str:
    """The name of the dialect the session's statements are compiled for ("postgresql", "sqlite")."""
    return session.get_bind().dialect.name


@dataclass(frozen=True, slots=True)
class _DriverStatement:
    sql: str
    compiled: SQLCompiler
    names: tuple[str, ...]
    bind_processors: tuple[Processor | None, ...]


class Prepared:
    """A select built once and run for many requests with new bind values (see the module's doc)."""

    __slots__ = ("_driver", "_results", "statement")

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        # Per dialect (name, driver): its SQL, and the result processors by column position.
        self._driver: dict[tuple[str, str], _DriverStatement | None] = {}
        self._results: dict[tuple[str, str], list[tuple[int, Processor]]] = {}

    def driver_statement(self, dialect: Dialect) -> _DriverStatement | None:
        """The statement's SQL and bind order for this dialect; None when its SQL varies with its values."""
        key = (dialect.name, dialect.driver)
        if key not in self._driver:
            self._driver[key] = _compile(self.statement, dialect)
        return self._driver[key]

    async def result_processors(
        self, dialect: Dialect, driver_connection: Any, sql: str
    ) -> list[tuple[int, Processor]]:
        key = (dialect.name, dialect.driver)
        processors = self._results.get(key)
        if processors is None:
            # The column types the server reports, as SQLAlchemy's asyncpg cursor describes them.
            attributes = (await driver_connection.prepare(sql)).get_attributes()
            columns = list(self.statement.selected_columns)
            if len(attributes) != len(columns):
                msg = "the statement's columns and the driver's differ"
                raise RuntimeError(msg)
            processors = []
            for index, (column, attribute) in enumerate(zip(columns, attributes, strict=True)):
                processor = column.type.dialect_impl(dialect).result_processor(dialect, attribute.type.oid)
                if processor is not None:
                    processors.append((index, processor))
            self._results[key] = processors
        return processors


def _compile(statement: Select[Any], dialect: Dialect) -> _DriverStatement | None:
    compiled = statement.compile(dialect=dialect)
    if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None or "__[POSTCOMPILE_" in compiled.string:
        return None
    names = tuple(compiled.positiontup)
    processors = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
    return _DriverStatement(compiled.string, compiled, names, processors)


@dataclass(slots=True)
class _Held:
    """The reads' connection: the session's own (`sync` set), or one of the pool's (`sync` None)."""

    pooled: PoolProxiedConnection
    sync: Connection | None = None
    connection: AsyncConnection | None = None  # the session's own, its async face once asked for


def _straight_to_driver(engine: Engine) -> bool:
    """Whether prepared reads on this engine may skip SQLAlchemy (asyncpg, nothing watching statements)."""
    dispatch = engine.dispatch
    return (
        engine.dialect.driver == "asyncpg"
        and not engine.echo
        and not (dispatch.before_cursor_execute or dispatch.after_cursor_execute)
    )


async def begin_reads(session: AsyncSession) -> None:
    """Check a connection out for reads and keep it at hand until `end_reads` (see the module's doc)."""
    engine = session.sync_session.get_bind()
    if isinstance(engine, Engine) and _straight_to_driver(engine) and not session.in_transaction():
        # Engine.raw_connection: the pool's checkout (its events: the ping) with SQLAlchemy's errors.
        session.info[_READS] = _Held(await greenlet_spawn(engine.raw_connection))
        return
    await _session_connection(session)


async def _session_connection(session: AsyncSession) -> AsyncConnection:
    """The session's own connection for reads, kept at hand; autocommit unless in a unit of work's transaction."""
    held: _Held | None = session.info.get(_READS)
    if held is not None and held.connection is not None:
        return held.connection
    if held is not None or session.in_transaction():
        connection = await session.connection()  # a pool's connection held is swapped by `_reads_swap`
    else:
        connection = await session.connection(execution_options=AUTOCOMMIT)
    session.info[_READS] = _Held(await connection.get_raw_connection(), connection.sync_connection, connection)
    return connection


@event.listens_for(Session, "after_transaction_create")
def _reads_swap(session: Session, transaction: SessionTransaction) -> None:
    """The session begins while the reads hold one of the pool's connections: give it back, take its own.

    Runs in the session's greenlet (the async session's calls all do), before the session checks a
    connection out for whatever began it: the one it checks out here, in autocommit, is that one.
    """
    held: _Held | None = session.info.get(_READS)
    if held is None or held.sync is not None or transaction.parent is not None:
        return
    del session.info[_READS]
    held.pooled.close()
    connection = session.connection(execution_options=AUTOCOMMIT)
    session.info[_READS] = _Held(connection.connection, connection)


async def end_reads(session: AsyncSession, *, close: bool = False) -> None:
    """Give the reads' connection back: one of the pool's to the pool; the session's is the session's to close.

    `close`: close the session too, in the same greenlet (each costs as much as a pool's checkin).
    """
    held: _Held | None = session.info.pop(_READS, None)
    pooled = held.pooled if held is not None and held.sync is None else None
    if close:
        await greenlet_spawn(_give_back_and_close, pooled, session.sync_session)
    elif pooled is not None:
        await greenlet_spawn(pooled.close)


def _give_back_and_close(pooled: PoolProxiedConnection | None, session: Session) -> None:
    try:
        if pooled is not None:
            pooled.close()
    finally:
        session.close()


async def select_rows(
    session: AsyncSession, statement: Executable | Prepared, parameters: Mapping[str, Any] | None = None
) -> Sequence[Sequence[Any]]:
    """Every row of a select of columns (no entities), on the connection the session holds."""
    held: _Held | None = session.info.get(_READS)
    if isinstance(statement, Prepared):
        rows = await _driver_rows(session, held, statement, parameters or {})
        if rows is not None:
            return rows
        statement = statement.statement
    connection = await _session_connection(session) if held is not None else await session.connection()
    return (await connection.execute(statement, parameters)).all()


async def _driver_rows(
    session: AsyncSession, held: _Held | None, prepared: Prepared, parameters: Mapping[str, Any]
) -> Sequence[Sequence[Any]] | None:
    """The rows of a prepared read straight from asyncpg; None when it must go through SQLAlchemy."""
    if held is None:
        return None  # in a unit of work's transaction, begun by SQLAlchemy's adapter with its first statement
    pooled, sync = held.pooled, held.sync
    if sync is not None:
        if not _straight_to_driver(sync.engine):
            return None
        if sync.dispatch.before_cursor_execute or sync.dispatch.after_cursor_execute:
            return None  # something observes this connection's statements: it sees this one too
        if not getattr(pooled.dbapi_connection, "autocommit", False):
            return None  # in a transaction: SQLAlchemy's adapter begins it with its first statement
        dialect = sync.dialect
    else:
        dialect = session.sync_session.get_bind().dialect
    driver = prepared.driver_statement(dialect)
    if driver is None:
        return None
    driver_connection = pooled.driver_connection
    if driver_connection is None:
        return None
    values = driver.compiled.construct_params(parameters)
    arguments = [
        value if process is None else process(value)
        for process, value in zip(driver.bind_processors, (values[name] for name in driver.names), strict=True)
    ]
    try:
        processors = await prepared.result_processors(dialect, driver_connection, driver.sql)
        records = await driver_connection.fetch(driver.sql, *arguments)
    except Exception as exc:
        # Logged (with the request's id, bound by the edge), then run again through SQLAlchemy: it raises
        # its own error for the read, which reaches the masking layer, and invalidates a dead connection.
        # One of the pool's is discarded first (whatever state the failure left it in), and the read
        # runs on the session's own.
        logger.warning("reads.driver_failed", error=type(exc).__name__, statement=driver.sql[:120])
        if sync is None:
            del session.info[_READS]
            await greenlet_spawn(pooled.invalidate)  # select_rows then takes the session's own connection
        return None
    if not processors:
        return cast(list[Sequence[Any]], records)
    rows: list[Sequence[Any]] = []
    for record in records:
        row = list(record)
        for index, process in processors:
            row[index] = process(row[index])
        rows.append(row)
    return rows
