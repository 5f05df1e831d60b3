"""Limits on a real Redis of the test's own: shared by two server processes, and Redis stopped mid-test."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from prometheus_client import REGISTRY

from api.app import create_app
from api.settings import Settings
from tests.graphql import error_codes
from tests.servers import free_port, running_uvicorn

COSTS_21 = {"query": "{ products { nodes { id } } }"}
STARTUP_SECONDS = 30


@dataclass
class PrivateRedis:
    """A redis-server on a port of its own, which a test may stop and start again."""

    port: int
    workdir: Path
    process: asyncio.subprocess.Process | None = field(default=None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--dir", str(self.workdir)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return
            except OSError:
                await asyncio.sleep(0.05)
        pytest.fail("redis-server did not start")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 10)
        self.process = None


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    redis = PrivateRedis(free_port(), tmp_path)
    await redis.start()
    try:
        yield redis
    finally:
        await redis.stop()


@contextmanager
def warnings_seen() -> Iterator[list[str]]:
    """The messages of every WARNING logged while the block runs (after create_app set logging up)."""
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                seen.append(str(record.msg))

    handler = Collect()
    logging.getLogger().addHandler(handler)
    try:
        yield seen
    finally:
        logging.getLogger().removeHandler(handler)


def _store_errors() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "rate_limit_storage_errors"
        for sample in metric.samples
        if sample.name == "rate_limit_storage_errors_total"
    )


async def _clear_of_window_edge() -> None:
    left = 60 - time.time() % 60
    if left < 8:
        await asyncio.sleep(left + 0.1)


async def test_fail_open_keeps_serving_while_redis_is_down_and_limits_return_with_it(
    settings: Settings, private_redis: PrivateRedis
) -> None:
    # given
    await _clear_of_window_edge()
    app = create_app(settings.model_copy(update={"redis_url": private_redis.url, "cost_budget": "50/minute"}))
    errors_before = _store_errors()
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
    ):
        counted = await client.post("/graphql", json=COSTS_21)
        # when: Redis goes away
        await private_redis.stop()
        with warnings_seen() as warnings:
            while_down = [await client.post("/graphql", json=COSTS_21) for _ in range(4)]
        # and comes back, empty: the budget counts from zero again
        await private_redis.start()
        after = [await client.post("/graphql", json=COSTS_21) for _ in range(3)]

    # then
    assert counted.json()["extensions"]["cost"]["remaining"] == 29
    assert [r.status_code for r in while_down] == [200] * 4
    assert all(r.json()["extensions"]["cost"]["remaining"] is None for r in while_down)
    assert _store_errors() - errors_before >= 4
    assert sum("rate_limit.store_unavailable" in line for line in warnings) == 1
    assert [r.status_code for r in after] == [200, 200, 429]


async def test_fail_closed_answers_503_while_redis_is_down_never_500(
    settings: Settings, private_redis: PrivateRedis
) -> None:
    # given
    overrides = {"redis_url": private_redis.url, "rate_limit_failure_mode": "closed"}
    app = create_app(settings.model_copy(update=overrides))
    sign_in = {"query": 'mutation { tokenCreate(input: {email: "a@b.co", password: "xxxxxxxxxxxx"}) { accessToken } }'}
    async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        before = await client.post("/graphql", json=COSTS_21)
        # when
        await private_redis.stop()
        down = [await client.post("/graphql", json=body) for body in (COSTS_21, sign_in)]
        await private_redis.start()
        back = await client.post("/graphql", json=COSTS_21)

    # then
    assert before.status_code == 200
    assert [r.status_code for r in down] == [503, 503]
    assert all(error_codes(r.json()) == ["SERVICE_UNAVAILABLE"] for r in down)
    assert all(int(r.headers["Retry-After"]) >= 1 for r in down)
    assert back.status_code == 200


async def test_two_instances_on_one_redis_admit_no_more_than_one_budget(
    settings: Settings, private_redis: PrivateRedis
) -> None:
    # given: two server processes on two ports, one Redis, a budget of 100 a minute
    await _clear_of_window_edge()
    async with (
        running_uvicorn(settings, REDIS_URL=private_redis.url, COST_BUDGET="100/minute") as first,
        running_uvicorn(settings, REDIS_URL=private_redis.url, COST_BUDGET="100/minute") as second,
        httpx.AsyncClient() as client,
    ):
        # when: 21 points a time, alternating between the instances
        answers = [await client.post(f"{server.url}/graphql", json=COSTS_21) for server in (first, second) * 5]

    # then: 4 x 21 = 84 fit in 100, a fifth would not, whichever instance it reaches
    admitted = [r.status_code == 200 for r in answers]
    assert admitted == [True] * 4 + [False] * 6
    assert all(r.status_code == 429 for r in answers[4:])
    assert answers[3].json()["extensions"]["cost"]["remaining"] == 100 - 84
