"""The production process: gunicorn with the real gunicorn.conf.py, two workers, a SIGTERM under load."""

import asyncio
import re
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from api.settings import Settings
from tests.gunicorn_process import TOP_PRODUCTS, Server, running_gunicorn, with_products

GRACEFUL_TIMEOUT = 20
DRAIN_SECONDS = 2
GRAPHQL_200 = 'http_requests_total{handler="/graphql",method="POST",status="200"}'


@pytest.fixture
async def gunicorn(settings: Settings, tmp_path: Path, db_session: AsyncSession) -> AsyncIterator[Server]:
    """gunicorn.conf.py as production runs it, with two workers, on the test database (and Redis)."""
    await with_products(db_session)
    async with running_gunicorn(
        settings,
        tmp_path,
        GUNICORN_GRACEFUL_TIMEOUT=str(GRACEFUL_TIMEOUT),
        GUNICORN_DRAIN_SECONDS=str(DRAIN_SECONDS),
        GUNICORN_REUSE_PORT="1",
    ) as server:
        yield server


def _fresh_connections() -> httpx.AsyncClient:
    # No keep-alive: every request is a new connection, which either worker may accept.
    return httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0), timeout=30)


def _sample(metrics: str, series: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_sum_the_requests_of_both_workers(gunicorn: Server) -> None:
    # given
    async with _fresh_connections() as client:
        # when: 40 requests, 8 at a time, each on a new connection
        for _ in range(5):
            responses = await asyncio.gather(
                *(client.post(f"{gunicorn.url}/graphql", json=TOP_PRODUCTS) for _ in range(8))
            )
            assert [response.status_code for response in responses] == [200] * 8
        # A worker counts a request just after sending its response: give the last ones a moment.
        for _ in range(50):
            if _sample((await client.get(f"{gunicorn.url}/metrics")).text, GRAPHQL_200) >= 40:
                break
            await asyncio.sleep(0.05)
        scrapes = [(await client.get(f"{gunicorn.url}/metrics")).text for _ in range(6)]

    # then: whichever worker answers the scrape, it reports both workers' requests
    writers = {path.name.rsplit("_", 1)[-1] for path in gunicorn.metrics_dir.glob("counter_*.db")}
    assert len(writers) >= 2
    assert [_sample(scrape, GRAPHQL_200) for scrape in scrapes] == [40.0] * 6
    assert 'graphql_operations_total{operation="TopProducts",outcome="ok",type="query"} 40.0' in scrapes[0]


@dataclass
class Outcome:
    started: float
    result: str  # "200", another status, "refused" (never accepted) or "broken" (accepted, then lost)


async def test_sigterm_turns_readiness_503_drains_in_flight_requests_and_exits_in_time(gunicorn: Server) -> None:
    # given: a steady stream of requests and a readiness probe
    outcomes: list[Outcome] = []
    probes: list[tuple[float, str]] = []
    answers: list[str] = []  # the bodies of probes that were not 200, to tell why
    stop = asyncio.Event()

    async def stream(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = await client.post(f"{gunicorn.url}/graphql", json=TOP_PRODUCTS)
                outcomes.append(Outcome(started, str(response.status_code)))
            except httpx.ConnectError:
                outcomes.append(Outcome(started, "refused"))
                await asyncio.sleep(0.05)
            except httpx.TransportError:
                outcomes.append(Outcome(started, "broken"))

    async def probe(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            try:
                response = await client.get(f"{gunicorn.url}/health/ready")
                probes.append((time.monotonic(), str(response.status_code)))
                if response.status_code != 200:
                    answers.append(response.text)
            except httpx.TransportError:
                probes.append((time.monotonic(), "refused"))
            await asyncio.sleep(0.05)

    async with _fresh_connections() as client:
        tasks = [asyncio.create_task(stream(client)) for _ in range(4)] + [asyncio.create_task(probe(client))]
        await asyncio.sleep(1.5)

        # when
        signalled = time.monotonic()
        gunicorn.process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(gunicorn.process.wait(), timeout=GRACEFUL_TIMEOUT + 10)
        exited = time.monotonic()
        stop.set()
        await asyncio.gather(*tasks)

    # then: the master exits in time and cleanly, its lines and its workers' in the app's log format
    assert exit_code == 0
    log = gunicorn.log.read_text()
    assert re.search(r"\[info +\] Booting worker with pid: \d+ +\[gunicorn.error\]", log), log[-2000:]
    assert re.search(r"\[info +\] Application startup complete\. +\[uvicorn.error\]", log), log[-2000:]
    # each worker closed its listening socket once (no "Error while closing socket [Errno 9]")
    assert "Errno 9" not in log, log[-2000:]
    assert exited - signalled < GRACEFUL_TIMEOUT
    # every request sent before the signal completed with 200, and so did those sent while draining
    before = [outcome.result for outcome in outcomes if outcome.started < signalled]
    draining = [o.result for o in outcomes if signalled <= o.started < signalled + DRAIN_SECONDS - 0.5]
    assert before
    assert set(before) == {"200"}
    assert draining
    assert set(draining) == {"200"}
    # readiness was 200 until the signal, then 503 while the server still answered, before it closed
    assert {status for at, status in probes if at < signalled} == {"200"}, answers
    after = [status for at, status in probes if at >= signalled]
    assert "503" in after
    assert after.index("503") < (after.index("refused") if "refused" in after else len(after))


@pytest.mark.parametrize(("trusted", "expected"), [("", [200, 429]), ("127.0.0.1", [200, 200])])
async def test_x_forwarded_for_counts_only_from_trusted_proxies_under_gunicorn(
    settings: Settings, tmp_path: Path, trusted: str, expected: list[int]
) -> None:
    # given: one request a minute per client IP; the test itself connects from 127.0.0.1
    async with (
        running_gunicorn(settings, tmp_path, GRAPHQL_RATE_LIMIT="1/minute", TRUSTED_PROXIES=trusted) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        # when: two clients, as a proxy would name them
        statuses = [
            (await client.post("/graphql", json=TOP_PRODUCTS, headers={"X-Forwarded-For": ip})).status_code
            for ip in ("198.51.100.1", "198.51.100.2")
        ]

    # then: untrusted, the header is ignored (both are 127.0.0.1); trusted, each address has its own count
    assert statuses == expected


async def test_gunicorn_keeps_its_redis_keys_under_the_prefix_of_the_test(
    redis_settings: Settings, tmp_path: Path
) -> None:
    # given
    redis = Redis.from_url(redis_settings.redis_url or "")
    try:
        # when: gunicorn starts on the test's Redis (the API declares the task queue's stream at start-up)
        async with running_gunicorn(redis_settings, tmp_path):
            stream = await redis.type(f"{redis_settings.redis_key_prefix}:tasks")
    finally:
        await redis.aclose()

    # then: the stream is under the test's own prefix, which the fixture deletes, not under the default one
    assert stream == b"stream"
