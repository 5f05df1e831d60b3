"""Worker recycling under load loses nothing: real gunicorn, real gunicorn.conf.py, keep-alive clients."""

import asyncio
import multiprocessing
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from api.settings import Settings
from api.worker import ListenerLock
from tests.gunicorn_process import Server, running_gunicorn, with_products

PRODUCT_NAMES = {"query": "query ProductNames { products(first: 2) { nodes { name } } }"}
MAX_REQUESTS, JITTER = 150, 20
CLIENTS = 8
TEARDOWN_DRAIN = "1"  # the SIGTERM drain (seconds) that stopping gunicorn after each test waits
PRODUCTION = {"GUNICORN_REUSE_PORT": "1"}  # one listening socket per worker, as gunicorn.conf.py defaults to
BOOTED = re.compile(r"Booting worker with pid: (\d+)")
RECYCLING = re.compile(r"worker recycling .*reason=(\w+)")
# gunicorn's line when a listening socket is closed twice (its descriptor already closed): Errno 9, EBADF.
DOUBLE_CLOSE = re.compile(r".*(?:Error while closing socket|Errno 9).*")
FORKED_ANSWER_SECONDS = 5.0


@dataclass
class Tally:
    """What the clients saw; a failure is a transport error, a status other than 200 or a GraphQL error."""

    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    closing: int = 0  # responses that asked the client to reconnect (Connection: close)

    @property
    def sent(self) -> int:
        return self.statuses.total() + len(self.failures)


async def _keep_alive_client(url: str, tally: Tally, done: Callable[[], bool]) -> None:
    """One connection, reused for every request until the server says otherwise: GraphQL and /health in turn."""
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=1), timeout=30) as client:
        graphql = False
        while not done():
            graphql = not graphql
            try:
                response = await (client.post("/graphql", json=PRODUCT_NAMES) if graphql else client.get("/health"))
            except httpx.TransportError as exc:
                tally.failures.append(repr(exc))
                continue
            tally.statuses[response.status_code] += 1
            tally.closing += response.headers.get("connection") == "close"
            if response.status_code != 200 or (graphql and "errors" in response.json()):
                tally.failures.append(f"{response.status_code} {response.text[:200]}")


async def _load(url: str, done: Callable[[Tally], bool]) -> Tally:
    tally = Tally()
    await asyncio.gather(*(_keep_alive_client(url, tally, lambda: done(tally)) for _ in range(CLIENTS)))
    return tally


def _workers_booted(server: Server) -> set[int]:
    return {int(pid) for pid in BOOTED.findall(server.log.read_text())}


def _recycle_reasons(server: Server) -> list[str]:
    return RECYCLING.findall(server.log.read_text())


def _double_closes(server: Server) -> list[str]:
    return DOUBLE_CLOSE.findall(server.log.read_text())


@pytest.fixture
async def recycling_by_count(settings: Settings, tmp_path: Path, db_session: AsyncSession) -> AsyncIterator[Server]:
    await with_products(db_session)
    env = {"GUNICORN_MAX_REQUESTS": str(MAX_REQUESTS), "GUNICORN_MAX_REQUESTS_JITTER": str(JITTER), **PRODUCTION}
    async with running_gunicorn(settings, tmp_path, GUNICORN_DRAIN_SECONDS=TEARDOWN_DRAIN, **env) as server:
        yield server


@pytest.fixture
async def recycling_by_memory(settings: Settings, tmp_path: Path, db_session: AsyncSession) -> AsyncIterator[Server]:
    await with_products(db_session)
    # Below any worker's resident set: every worker passes it at its first check.
    async with running_gunicorn(
        settings, tmp_path, GUNICORN_DRAIN_SECONDS=TEARDOWN_DRAIN, GUNICORN_MAX_WORKER_MEMORY_MB="1", **PRODUCTION
    ) as server:
        yield server


async def test_workers_recycled_by_request_count_under_keep_alive_load_fail_no_request(
    recycling_by_count: Server,
) -> None:
    # given: two workers, each recycled after 150 to 170 requests
    # when: 8 keep-alive clients send 2,400 requests, GraphQL and /health in turn
    tally = await _load(recycling_by_count.url, lambda tally: tally.sent >= 2400)

    # then: the workers were replaced several times, and every request got its 200
    booted = _workers_booted(recycling_by_count)
    assert len(booted) >= 2 + 3, recycling_by_count.log.read_text()[-3000:]
    assert tally.failures == [], f"{len(tally.failures)} of {tally.sent} failed: {Counter(tally.failures)}"
    assert tally.statuses == {200: tally.sent}
    # each recycle said why, and sent the clients of its open connections elsewhere
    reasons = _recycle_reasons(recycling_by_count)
    assert len(reasons) >= 3
    assert set(reasons) == {"max_requests"}
    assert tally.closing >= 3
    # and closed its listening socket once (uvloop's server closes it; nothing closes it again)
    assert _double_closes(recycling_by_count) == []


async def test_a_worker_over_its_memory_ceiling_recycles_gracefully_under_load(recycling_by_memory: Server) -> None:
    # given: a memory ceiling of 1 MiB, which each worker passes at its first check (every 5 s)
    # when: keep-alive clients send requests until two replacement workers have booted (or 40 s passed)
    enough = asyncio.Event()

    async def watch_the_log() -> None:
        for _ in range(200):
            if len(_workers_booted(recycling_by_memory)) >= 2 + 2:
                break
            await asyncio.sleep(0.2)
        enough.set()

    watcher = asyncio.create_task(watch_the_log())
    tally = await _load(recycling_by_memory.url, lambda _tally: enough.is_set())
    await watcher

    # then: the workers recycled for their memory, said so with their RSS, and no request failed
    log = recycling_by_memory.log.read_text()
    assert _recycle_reasons(recycling_by_memory)[:2] == ["memory", "memory"], log[-3000:]
    rss = [float(value) for value in re.findall(r"worker recycling .*rss_mib=([\d.]+)", log)]
    assert rss
    assert min(rss) > 1
    assert len(_workers_booted(recycling_by_memory)) >= 2 + 2
    assert tally.sent > 0
    assert tally.failures == [], f"{len(tally.failures)} of {tally.sent} failed: {Counter(tally.failures)}"
    assert _double_closes(recycling_by_memory) == []


def _report_attempt(answer: Connection) -> None:
    with ListenerLock.attempt() as acquired:
        answer.send(acquired)


def _attempt_in_a_forked_worker() -> bool | None:
    """What ListenerLock.attempt gives in a process forked from this one (as a worker is); None: no answer."""
    fork = multiprocessing.get_context("fork")
    receiver, sender = fork.Pipe(duplex=False)
    worker = fork.Process(target=_report_attempt, args=(sender,))
    worker.start()
    try:
        answered: bool | None = receiver.recv() if receiver.poll(FORKED_ANSWER_SECONDS) else None
        return answered
    finally:
        worker.kill()  # still waiting, if attempt() blocked
        worker.join()
        receiver.close()
        sender.close()


def test_the_listener_lock_refuses_a_second_worker_at_once_instead_of_blocking_its_event_loop() -> None:
    # given: the lock file opened as the arbiter opens it, and held here: one worker deciding to stop listening
    ListenerLock.open()
    with ListenerLock.attempt() as held:
        # when: another worker, forked after the open, asks for it meanwhile
        meanwhile = _attempt_in_a_forked_worker()

    # then: the other worker is told no at once (it tries again at its next tick), and gets it once free
    assert held is True
    assert meanwhile is False
    assert _attempt_in_a_forked_worker() is True
