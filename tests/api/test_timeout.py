"""The wall-clock ceiling per operation: an operation stuck in the database is cancelled, its query too."""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.app import create_app
from api.db import create_engine
from api.settings import Settings
from tests.graphql import error_codes

CEILING_SECONDS = 0.5
READ = {"query": "{ products { nodes { id } } }"}
# A write needs SQLite's write lock, which the blocker holds.
WRITE = {
    "query": "mutation { accountRegister(input: "
    '{email: "slow@example.com", password: "a long enough password", name: "Slow"}) { user { id } } }'
}


@pytest.fixture
async def impatient_app(settings: Settings) -> AsyncIterator[FastAPI]:
    # SQLite would wait a minute for its lock: the ceiling caps that wait too.
    overrides = {"operation_timeout_seconds": CEILING_SECONDS, "sqlite_busy_timeout_ms": 60_000}
    application = create_app(settings.model_copy(update=overrides))
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def blocker(settings: Settings) -> AsyncIterator[AsyncConnection]:
    """A connection holding a lock that stops the app's next statement: the product table, or SQLite's write lock."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            if settings.is_sqlite:
                await connection.begin()  # api.db begins SQLite transactions IMMEDIATE: the write lock
                await connection.exec_driver_sql("SELECT 1")
            else:
                await connection.execute(text("LOCK TABLE product IN ACCESS EXCLUSIVE MODE"))
            yield connection
            await connection.rollback()
    finally:
        await engine.dispose()


async def _waiting_on_locks(settings: Settings) -> int:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            query = (
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return int((await connection.execute(text(query))).scalar_one())
    finally:
        await engine.dispose()


async def test_an_operation_past_the_ceiling_is_cancelled_with_its_database_work(
    settings: Settings, impatient_app: FastAPI, blocker: AsyncConnection
) -> None:
    # given: the lock is held for the whole test
    body = WRITE if settings.is_sqlite else READ
    async with AsyncClient(transport=ASGITransport(app=impatient_app), base_url="http://t") as client:
        # when
        started = time.monotonic()
        response = await client.post("/graphql", json=body)
        waited = time.monotonic() - started

    # then: answered while the lock is still held, long before the lock (or SQLite's minute) would end
    assert blocker.in_transaction()
    assert waited < 30
    assert response.status_code == 200
    assert error_codes(response.json()) == ["OPERATION_TIMEOUT"]
    assert response.json()["data"] is None
    assert "0.5 s" in response.json()["errors"][0]["message"]
    if not settings.is_sqlite:
        # the query was cancelled in PostgreSQL too, not left waiting on the lock
        for _ in range(50):
            if await _waiting_on_locks(settings) == 0:
                break
            await asyncio.sleep(0.1)
        assert await _waiting_on_locks(settings) == 0
    assert impatient_app.state.engine.pool.checkedout() == 0


async def test_an_operation_within_the_ceiling_is_untouched(impatient_app: FastAPI) -> None:
    async with AsyncClient(transport=ASGITransport(app=impatient_app), base_url="http://t") as client:
        response = await client.post("/graphql", json=READ)
    assert response.json()["data"] == {"products": {"nodes": []}}


async def test_the_ceiling_holds_when_its_first_cancellation_is_lost(
    impatient_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the cost budget's store loses the first cancellation, as Python 3.11's `asyncio.wait_for`
    # (redis-py sends every command through it) does when the cancellation meets the command's result
    rate_limits = impatient_app.state.rate_limits
    spend_cost = rate_limits.spend_cost
    lost: list[bool] = []

    async def losing_a_cancellation(client: str, cost: int) -> object:
        try:
            await asyncio.sleep(CEILING_SECONDS * 2)
        except asyncio.CancelledError:
            lost.append(True)  # swallowed: the operation goes on
        await asyncio.sleep(60)  # and waits as a statement on a held lock would
        return await spend_cost(client, cost)

    monkeypatch.setattr(rate_limits, "spend_cost", losing_a_cancellation)

    # when
    async with AsyncClient(transport=ASGITransport(app=impatient_app), base_url="http://t") as client:
        started = time.monotonic()
        response = await asyncio.wait_for(client.post("/graphql", json=READ), 30)
        waited = time.monotonic() - started

    # then: cancelled again, and answered at the ceiling, not after the minute
    assert lost == [True]
    assert waited < 10
    assert error_codes(response.json()) == ["OPERATION_TIMEOUT"]
