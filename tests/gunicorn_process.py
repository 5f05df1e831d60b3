"""The production process in tests: gunicorn with the real gunicorn.conf.py, in a process group of its own.

The master leads a new session, so its workers share its process group: stopping the group stops
every worker too, even one whose master already died, and nothing is left listening after a test.
"""

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from api.settings import Settings
from tests import factories

ROOT = Path(__file__).resolve().parent.parent
PROC = Path("/proc")
STOP_SECONDS = 30.0  # above the graceful timeouts the tests configure
# What the gunicorn tests send: a small page that reads the database, over the products `with_products` makes.
TOP_PRODUCTS = {"query": "query TopProducts { products(first: 5) { nodes { name price { amount } } } }"}


async def with_products(db_session: AsyncSession) -> None:
    """Commit the five products TOP_PRODUCTS reads."""
    for _ in range(5):
        await factories.create_product(db_session)
    await db_session.commit()


@dataclass
class Server:
    url: str
    process: asyncio.subprocess.Process
    metrics_dir: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _environment(settings: Settings, port: int, metrics_dir: Path, overrides: dict[str, str]) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.effective_database_url,
        "WEB_CONCURRENCY": "2",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "DB_POOL_SIZE": "4",
        "LOG_LEVEL": "INFO",
        # The load tests send thousands of requests from one address; the limits have tests of their own.
        "GRAPHQL_RATE_LIMIT": "1000000/minute",
        "COST_BUDGET": "1000000000/minute",
        # One listening socket shared by the workers, so `paused()` steers a new connection to the
        # worker left running; production's per-worker sockets (GUNICORN_REUSE_PORT=1, the default of
        # gunicorn.conf.py) hash it to either, paused or not. Tests of the production set-up pass "1".
        "GUNICORN_REUSE_PORT": "0",
    }
    if settings.redis_url:
        # Under the test's own prefix, whose keys its settings fixture deletes: with the default one
        # (`storefront`) the task queue's stream (`storefront:tasks`, created at start-up with its
        # consumer group) and the rate limits' counters outlived the test.
        env |= {"REDIS_URL": settings.redis_url, "REDIS_KEY_PREFIX": settings.redis_key_prefix}
    return {**env, **overrides}


async def _wait_until_ready(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(600):
            try:
                if (await client.get("/health/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail("gunicorn did not become ready")


@asynccontextmanager
async def running_gunicorn(settings: Settings, tmp_path: Path, **overrides: str) -> AsyncIterator[Server]:
    """gunicorn.conf.py as production runs it, two workers, on the test database; `overrides` extend its env."""
    port, metrics_dir, log_path = _free_port(), tmp_path / "metrics", tmp_path / "gunicorn.log"
    metrics_dir.mkdir()
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"),
            cwd=ROOT,
            env=_environment(settings, port, metrics_dir, overrides),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            server = Server(f"http://127.0.0.1:{port}", process, metrics_dir, log_path)
            await _wait_until_ready(server.url)
            yield server
        finally:
            await stop_process_group(process)


def _signal_group(group: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(group, sig)


def group_members(group: int) -> list[int]:
    """The live processes of a process group (zombies run nothing and hold no socket)."""
    members = []
    for entry in PROC.iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited while we looked
        # The command name may hold spaces and parentheses; state and pgrp follow the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(entry.name))
    return members


async def _wait_until_gone(group: int, seconds: float) -> list[int]:
    for _ in range(int(seconds * 10)):
        if not (members := group_members(group)):
            return members
        await asyncio.sleep(0.1)
    return group_members(group)


async def stop_process_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM gunicorn's whole group, wait, SIGKILL what is left, and fail if anything had to be killed."""
    group = process.pid  # start_new_session: the master leads its own group
    _signal_group(group, signal.SIGTERM)
    with suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), timeout=STOP_SECONDS)
    # The master's exit is not enough: an orphaned worker would keep the port open.
    if survivors := await _wait_until_gone(group, seconds=5):
        _signal_group(group, signal.SIGKILL)
        await process.wait()
        left = await _wait_until_gone(group, seconds=5)
        pytest.fail(f"gunicorn's group {group}: {survivors} survived SIGTERM, {left} survived SIGKILL")


def _listening_inodes(port: int) -> set[str]:
    # /proc/net/tcp{,6}: "sl local_address rem_address st ... inode"; st 01 is ESTABLISHED.
    inodes = set()
    for table in (PROC / "net" / "tcp", PROC / "net" / "tcp6"):
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def connections_per_worker(server: Server) -> dict[int, int]:
    """How many established connections to the server's port each worker holds."""
    inodes = _listening_inodes(int(server.url.rsplit(":", 1)[1]))
    counts = {}
    for pid in group_members(server.process.pid):
        if pid == server.process.pid:
            continue
        held = 0
        with suppress(FileNotFoundError, ProcessLookupError):
            for fd in (PROC / str(pid) / "fd").iterdir():
                with suppress(FileNotFoundError):
                    target = os.readlink(fd)
                    held += target.startswith("socket:[") and target[8:-1] in inodes
        counts[pid] = held
    return counts


async def workers(server: Server, count: int = 2) -> list[int]:
    """The server's `count` worker processes (its group, without the master), once all are up."""
    for _ in range(100):
        found = sorted(pid for pid in group_members(server.process.pid) if pid != server.process.pid)
        if len(found) == count:
            return found
        await asyncio.sleep(0.1)
    pytest.fail(f"gunicorn runs {found} as workers, not {count}")


@contextmanager
def paused(pid: int) -> Iterator[None]:
    """Stop a worker for the block (SIGSTOP): connections made meanwhile go to the other one (shared socket only)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
