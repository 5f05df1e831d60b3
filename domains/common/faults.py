"""Which failures of the database are the database's state rather than a fault of ours: told apart here.

A database that cannot be reached (refused, reset, restarting, shut down), or that is busy (every
pooled connection lent and none given back in time, too many connections, SQLite's write lock held
past its busy timeout) answers the same request differently a few seconds later. Such a failure is
a `ServiceUnavailableError` for the client: `SERVICE_UNAVAILABLE` with a retry hint, never an
internal error. Anything else the database raises (a constraint, a statement it refuses) stays
unexpected: masked, and logged with its traceback.
"""

from typing import Literal

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from domains.common.exceptions import ServiceUnavailableError

DatabaseState = Literal["busy", "unreachable"]

DATABASE_BUSY = "The database is busy; try again shortly."
DATABASE_UNREACHABLE = "The database is unavailable; try again shortly."
RETRY_AFTER_SECONDS: dict[DatabaseState, int] = {"busy": 1, "unreachable": 5}

# SQLSTATE (PostgreSQL's error codes, appendix A): class 08 is a connection exception; 53300
# too_many_connections; 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (starting
# up, shutting down, in recovery). 57014 (query_canceled) is not here: the operation's own ceiling
# cancels statements with it, and answers OPERATION_TIMEOUT.
_BUSY_SQLSTATES = ("53300",)
_UNREACHABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")
# SQLite (through aiosqlite): a writer waited its busy timeout for the lock.
_SQLITE_BUSY = ("database is locked", "database table is locked")


class DatabaseUnavailableError(ServiceUnavailableError):
    """The database could not serve this request now; `state` tells a busy one from an unreachable one."""

    def __init__(self, state: DatabaseState) -> None:
        super().__init__(
            DATABASE_BUSY if state == "busy" else DATABASE_UNREACHABLE, retry_after=RETRY_AFTER_SECONDS[state]
        )
        self.state: DatabaseState = state


def database_state(error: BaseException) -> DatabaseState | None:
    """Tell whether an error raised by database work is the database being busy or unreachable; else None.

    For errors raised inside a unit of work's block (schema/unit_of_work.py): there an `OSError`
    (refused, reset, a connect timeout) comes from opening or using a connection, which asyncpg
    raises as it is, without SQLAlchemy's wrapping.
    """
    if isinstance(error, PoolTimeoutError):
        return "busy"
    # SQLAlchemy wraps the driver's error (`orig`); the pool's checkout, as `Engine.raw_connection`, does not.
    original = error.orig if isinstance(error, DBAPIError) else error
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate.startswith(_BUSY_SQLSTATES):
            return "busy"
        if sqlstate.startswith(_UNREACHABLE_SQLSTATES):
            return "unreachable"
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return "unreachable"  # SQLAlchemy saw the connection die (asyncpg: closed in the middle of a statement)
        if isinstance(error, OperationalError) and str(original).startswith(_SQLITE_BUSY):
            return "busy"
        return None
    if isinstance(error, OSError):
        return "unreachable"
    return None
