"""A database that is busy or cannot be reached answers SERVICE_UNAVAILABLE with a retry hint, never internals."""

import asyncio
import json
import logging
import socket
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from api.app import create_app
from api.auth.principal import build_token_issuer
from api.db import create_engine, create_sessionmaker
from api.settings import Settings
from domains.common.faults import DATABASE_BUSY, DATABASE_UNREACHABLE, database_state
from domains.common.ids import encode_global_id
from domains.common.principal import Role
from tests import factories
from tests.auth import bearer
from tests.orders.conftest import ORDER_PLACE, lines
from tests.servers import running_uvicorn

PRODUCTS = "{ products(first: 1) { nodes { name } } }"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
LEAKS = ("127.0.0.1", "Errno", "Connect call", "asyncpg", "sqlalchemy", "Traceback")


def _closed_port() -> int:
    """A local port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _codes(response: Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


def _unavailable_samples(text_: str) -> dict[str, float]:
    samples: dict[str, float] = {}
    for line in text_.splitlines():
        if line.startswith("db_unavailable_total{"):
            labels, _, value = line.rpartition(" ")
            samples[labels.partition('state="')[2].partition('"')[0]] = float(value)
    return samples


# Real failures, each raised by the real driver or pool, told apart.


def test_sqlite_holding_its_write_lock_past_the_busy_timeout_is_busy(tmp_path: Path) -> None:
    # given: another connection holds SQLite's write lock
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    engine = sqlalchemy.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        # when: a writer does not get it
        with pytest.raises(OperationalError) as raised, engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        engine.dispose()
        holder.close()

    # then
    assert database_state(raised.value) == "busy"


def test_a_pool_with_every_connection_lent_past_its_timeout_is_busy(tmp_path: Path) -> None:
    # given: a pool of one, its connection lent
    engine = sqlalchemy.create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}", poolclass=QueuePool, pool_size=1, max_overflow=0, pool_timeout=0.01
    )
    try:
        with engine.connect(), pytest.raises(PoolTimeoutError) as raised, engine.connect():
            pass  # when: a second checkout waits past the timeout
    finally:
        engine.dispose()

    # then
    assert database_state(raised.value) == "busy"


async def test_a_refused_connection_is_unreachable() -> None:
    # given: a PostgreSQL URL nothing listens on
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/none")
    try:
        # when
        with pytest.raises(ConnectionRefusedError) as raised:
            async with engine.connect():
                pass
    finally:
        await engine.dispose()

    # then: asyncpg's own error, unwrapped by SQLAlchemy, and still the database's state
    assert database_state(raised.value) == "unreachable"


def test_errors_that_are_not_the_databases_state_stay_unexpected(tmp_path: Path) -> None:
    # given: a unique constraint the statement breaks
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'unique.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER UNIQUE)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(IntegrityError) as raised, engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        engine.dispose()

    # then
    assert database_state(raised.value) is None
    assert database_state(ValueError("not the database")) is None


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"server said {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "state"),
    [
        ("57P03", "unreachable"),  # cannot_connect_now: starting up, shutting down
        ("57P01", "unreachable"),  # admin_shutdown: the backend was terminated
        ("08006", "unreachable"),  # connection_failure
        ("53300", "busy"),  # too_many_connections
        ("57014", None),  # query_canceled: the operation's own ceiling (OPERATION_TIMEOUT)
        ("23505", None),  # unique_violation
        ("40P01", None),  # deadlock_detected
    ],
)
def test_postgresql_sqlstates_wrapped_by_sqlalchemy_or_not(sqlstate: str, state: str | None) -> None:
    driver_error = _DriverError(sqlstate)
    wrapped = DBAPIError("SELECT 1", None, driver_error)

    assert database_state(driver_error) == state
    assert database_state(wrapped) == state


# The app, on a database nothing answers for.


@pytest.fixture
async def unreachable_app(settings: Settings) -> AsyncIterator[FastAPI]:
    down = settings.model_copy(
        update={"database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/storefront"}
    )
    application = create_app(down)
    async with LifespanManager(application):
        yield application


async def test_an_unreachable_database_answers_503_service_unavailable_with_retry_after(
    unreachable_app: FastAPI,
) -> None:
    async with AsyncClient(transport=ASGITransport(app=unreachable_app), base_url="http://t") as http:
        before = _unavailable_samples((await http.get("/metrics")).text)

        # when: an operation that reads, one that needs no database, and a sign-in
        reads = await http.post("/graphql", json={"query": PRODUCTS})
        strict = await http.post(
            "/graphql", json={"query": PRODUCTS}, headers={"accept": "application/graphql-response+json"}
        )
        typename = await http.post("/graphql", json={"query": "{ __typename }"})
        sign_in = await http.post(
            "/graphql",
            json={
                "query": 'mutation { tokenCreate(input: {email: "a@example.com", password: "secret-pass"}) '
                "{ accessToken userErrors { code } } }"
            },
        )
        after = _unavailable_samples((await http.get("/metrics")).text)

    # then: no data at all is a 503 with Retry-After, whichever media type; the message says what to do
    for response in (reads, strict, sign_in):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json()["data"] is None
        assert _codes(response) == [SERVICE_UNAVAILABLE]
        assert response.json()["errors"][0]["message"] == DATABASE_UNREACHABLE
        assert response.json()["errors"][0]["extensions"]["requestId"] == response.headers["x-request-id"]
        assert not any(leak in response.text for leak in LEAKS)
    assert typename.status_code == 200
    assert typename.json()["data"] == {"__typename": "Query"}
    assert after.get("unreachable", 0) - before.get("unreachable", 0) >= 3


async def test_a_signed_in_request_is_refused_before_its_operation_and_a_forged_token_without_the_database(
    unreachable_app: FastAPI,
) -> None:
    # given: a valid access token (its account is read on every request) and a forged one
    token, _ = unreachable_app.state.token_issuer.issue_access(1, frozenset({Role.CUSTOMER}), now=datetime.now(UTC))

    async with AsyncClient(transport=ASGITransport(app=unreachable_app), base_url="http://t") as http:
        # when
        signed_in = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"authorization": f"Bearer {token}"}
        )
        forged = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"authorization": f"Bearer {token}x"}
        )

    # then: a GraphQL-shaped request error (no `data`: nothing ran), and the forged token is refused as such
    assert signed_in.status_code == 503
    assert signed_in.headers["retry-after"] == "5"
    assert "data" not in signed_in.json()
    assert _codes(signed_in) == [SERVICE_UNAVAILABLE]
    assert not any(leak in signed_in.text for leak in LEAKS)
    assert _codes(forged) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize("sent_in", ["connection_init", "upgrade request"])
async def test_a_websocket_whose_credential_cannot_be_checked_is_closed_try_again_later(
    settings: Settings, tmp_path: Path, sent_in: str
) -> None:
    # given: a real server on a database nothing answers for, and a valid access token, sent in the
    # `connection_init` payload or as the upgrade request's Authorization header
    down = settings.model_copy(
        update={"database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/storefront"}
    )
    token, _ = build_token_issuer(settings).issue_access(1, frozenset({Role.CUSTOMER}), now=datetime.now(UTC))
    authorization = {"authorization": f"Bearer {token}"}
    in_payload = sent_in == "connection_init"
    init = {"type": "connection_init", "payload": authorization if in_payload else {}}

    async with running_uvicorn(down, log=tmp_path / "server.log") as server:
        url = server.url.replace("http://", "ws://") + "/graphql"
        async with connect(
            url,
            subprotocols=[Subprotocol("graphql-transport-ws")],
            additional_headers=None if in_payload else authorization,
        ) as websocket:
            # when
            await websocket.send(json.dumps(init))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(websocket.recv(), 10)

    # then: 1013 (try again later), not 4403 (the credential refused), with the reason a client can show
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013
    assert closed.value.rcvd.reason == DATABASE_UNREACHABLE


# The app, on the real database, with every pooled connection lent.


@pytest.fixture
async def one_connection_app(settings: Settings) -> AsyncIterator[FastAPI]:
    narrow = settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout": 0.2})
    application = create_app(narrow)
    async with LifespanManager(application):
        yield application


async def test_an_exhausted_pool_is_busy_and_the_next_request_after_it_is_served(one_connection_app: FastAPI) -> None:
    engine = one_connection_app.state.engine
    node = f'{{ node(id: "{encode_global_id("Product", 1)}") {{ id }} }}'
    async with AsyncClient(transport=ASGITransport(app=one_connection_app), base_url="http://t") as http:
        # when: the pool's only connection is lent elsewhere
        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))
            refused = await http.post("/graphql", json={"query": PRODUCTS})
            partial = await http.post("/graphql", json={"query": node})
        # and when it is given back
        served = await http.post("/graphql", json={"query": PRODUCTS})

    # then: busy, with a shorter retry hint; a nullable field keeps its data (200) and carries the code
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert _codes(refused) == [SERVICE_UNAVAILABLE]
    assert refused.json()["errors"][0]["message"] == DATABASE_BUSY
    assert partial.status_code == 200
    assert partial.json()["data"] == {"node": None}
    assert _codes(partial) == [SERVICE_UNAVAILABLE]
    assert "retry-after" not in partial.headers
    assert served.status_code == 200
    assert served.json() == {"data": {"products": {"nodes": []}}, "extensions": served.json()["extensions"]}


# PostgreSQL terminating the backend of a statement in flight, as a restart or a failover does.


@contextmanager
def _unit_of_work_warnings() -> Iterator[list[dict[str, Any]]]:
    """The event dicts of the warnings the unit of work logs while the block runs (through the stdlib)."""
    seen: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING and isinstance(record.msg, dict):
                seen.append(record.msg)

    handler = Collect()
    unit_of_work = logging.getLogger("schema.unit_of_work")
    unit_of_work.addHandler(handler)
    try:
        yield seen
    finally:
        unit_of_work.removeHandler(handler)


async def _waiting_for_a_lock(engine: AsyncEngine) -> int:
    """The pid of the first backend of this database waiting on a lock, once there is one."""
    async with engine.connect() as connection:
        for _ in range(200):
            pid = await connection.scalar(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() LIMIT 1"
                )
            )
            await connection.rollback()  # pg_stat_activity is a snapshot per transaction
            if pid is not None:
                return int(pid)
            await asyncio.sleep(0.05)
    raise AssertionError("no request came to wait on the product's row lock")


async def test_a_write_whose_backend_is_terminated_mid_statement_answers_503_and_loses_nothing(
    postgres_redis_settings: Settings,
) -> None:
    # given: a product and a buyer, on PostgreSQL, and another transaction holding the product's row
    app = create_app(postgres_redis_settings)
    engine = create_engine(postgres_redis_settings)
    try:
        async with create_sessionmaker(engine)() as session:
            product = await factories.create_product(session, stock=3)
            buyer = await factories.create_user(session)
            await session.commit()
        async with (
            LifespanManager(app),
            AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http,
        ):
            caller = bearer(app, buyer)
            variables = {"input": {"items": lines((product.id, 1)), "idempotencyKey": None}}
            async with engine.connect() as locker:
                await locker.execute(text("SELECT 1 FROM product WHERE id = :id FOR UPDATE"), {"id": product.id})
                order = asyncio.create_task(
                    http.post("/graphql", json={"query": ORDER_PLACE, "variables": variables}, headers=caller.headers)
                )

                # when: the order's statement waits on the row, and its backend is terminated
                pid = await _waiting_for_a_lock(engine)
                with _unit_of_work_warnings() as logs:
                    async with engine.connect() as killer:
                        await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                    refused = await asyncio.wait_for(order, 10)
                await locker.rollback()

            # and when the buyer tries again
            retried = await http.post(
                "/graphql", json={"query": ORDER_PLACE, "variables": variables}, headers=caller.headers
            )
        async with create_sessionmaker(engine)() as session:
            stock = await session.scalar(text("SELECT stock FROM product WHERE id = :id"), {"id": product.id})
            orders = await session.scalar(text('SELECT count(*) FROM "order"'))
    finally:
        await engine.dispose()

    # then: unreachable (the backend went away), nothing of the first attempt kept, the retry served
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert _codes(refused) == [SERVICE_UNAVAILABLE]
    assert refused.json()["errors"][0]["message"] == DATABASE_UNREACHABLE
    assert not any(leak in refused.text for leak in LEAKS)
    # logged once, as the database's state, with the driver's words and not the statement or its values
    [logged] = [log for log in logs if log["event"] == "db.unavailable"]
    assert logged["state"] == "unreachable"
    assert "terminating connection" in logged["detail"]
    assert "[SQL:" not in logged["detail"]
    assert retried.status_code == 200
    assert retried.json()["data"]["orderPlace"]["order"]["status"] == "PENDING"
    assert (stock, orders) == (2, 1)
