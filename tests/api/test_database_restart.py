"""A real PostgreSQL of the test's own, stopped and started again under steady traffic to a real server.

What clients see while the database restarts: answers, never internals. Every request is either served
(200) or told SERVICE_UNAVAILABLE with Retry-After (503); none is an INTERNAL_SERVER_ERROR, none hangs,
and once the database is back every request is served again without restarting the app.
"""

import asyncio
import glob
import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import create_engine, create_sessionmaker
from api.settings import Settings
from tests import factories
from tests.conftest import migrate
from tests.servers import free_port, running_uvicorn

PRODUCTS = {"query": "{ products(first: 3) { nodes { name } } }"}
CLIENTS = 4
DOWN_SECONDS = 1.5
AFTER_SECONDS = 2.0


def _postgres_bin() -> Path:
    """The directory of this machine's PostgreSQL server programs (initdb, pg_ctl, createdb), newest first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path is None:
        pytest.fail("this test needs PostgreSQL's server programs (initdb, pg_ctl), as .ci/run's machine has")
    return Path(on_path).parent


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster in a directory of its own, on a port of its own, which a test may stop and start."""

    directory: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/storefront"

    def _as_owner(self, *command: str) -> list[str]:
        # initdb and postgres refuse to run as root; CI runs as root, a developer usually not.
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)

    async def _run(self, *command: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._as_owner(*command), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, errors = await asyncio.wait_for(process.communicate(), 60)
        if process.returncode != 0:
            pytest.fail(f"{command[0]} failed: {errors.decode(errors='replace')}")

    async def create(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, user="postgres")
        data = str(self.directory / "data")
        await self._run(str(self.bin / "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        await self.start()
        address = ("-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres")
        await self._run(str(self.bin / "createdb"), *address, "storefront")

    async def _pg_ctl(self, *arguments: str) -> None:
        await self._run(str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), "-w", *arguments)

    async def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        await self._pg_ctl("-o", options, "-l", str(self.directory / "server.log"), "start")

    async def stop(self, mode: str = "fast") -> None:
        await self._pg_ctl("-m", mode, "stop")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None


@pytest.fixture
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    # Not under pytest's tmp_path: its parent directories are root's alone, and the server runs as postgres.
    directory = Path(tempfile.mkdtemp(prefix="storefront-pg-"))
    postgres = PrivatePostgres(directory, free_port(), _postgres_bin())
    try:
        await postgres.create()
        yield postgres
    finally:
        pid = postgres.postmaster_pid()
        if pid is not None:
            try:
                await postgres.stop("immediate")
            except BaseException:
                os.kill(pid, signal.SIGQUIT)  # the postmaster's own immediate shutdown
                raise
        shutil.rmtree(directory, ignore_errors=True)


Outcome = tuple[float, int, tuple[str, ...], str | None]  # when, status, error codes, Retry-After


async def _drive(url: str, until: asyncio.Event, outcomes: list[Outcome]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        while not until.is_set():
            response = await http.post("/graphql", json=PRODUCTS)
            codes = tuple(sorted({error["extensions"]["code"] for error in response.json().get("errors", [])}))
            outcomes.append((time.monotonic(), response.status_code, codes, response.headers.get("retry-after")))
            await asyncio.sleep(0.01)


async def test_a_database_restart_under_traffic_answers_503_then_serves_again(
    private_postgres: PrivatePostgres, settings: Settings, tmp_path: Path
) -> None:
    # given: the schema and a few products on the private database, and the app serving it
    await asyncio.to_thread(migrate, private_postgres.url)
    app_settings = settings.model_copy(update={"database_url": private_postgres.url})
    engine = create_engine(app_settings)
    try:
        async with create_sessionmaker(engine)() as session:
            await _products(session)
    finally:
        await engine.dispose()

    unlimited = {"GRAPHQL_RATE_LIMIT": "1000000/minute", "COST_BUDGET": "100000000/minute"}  # four steady clients
    async with running_uvicorn(app_settings, log=tmp_path / "server.log", **unlimited) as server:
        done = asyncio.Event()
        outcomes: list[Outcome] = []
        clients = [asyncio.create_task(_drive(server.url, done, outcomes)) for _ in range(CLIENTS)]
        try:
            # when: the database stops under the traffic, stays down a while, and starts again
            await asyncio.sleep(0.5)
            await private_postgres.stop("fast")
            await asyncio.sleep(DOWN_SECONDS)
            await private_postgres.start()
            back = time.monotonic()
            await asyncio.sleep(AFTER_SECONDS)
        finally:
            done.set()
            await asyncio.gather(*clients)

    # then: served, or refused with the code and a retry hint; never an internal error
    seen = Counter((status, codes, retry) for _, status, codes, retry in outcomes)
    assert set(seen) <= {(200, (), None), (503, ("SERVICE_UNAVAILABLE",), "5")}, seen
    assert seen[(503, ("SERVICE_UNAVAILABLE",), "5")] > 0, seen  # the outage was seen
    assert seen[(200, (), None)] > 0, seen
    # and a second after the database is back, every request is served
    settled = [status for at, status, _, _ in outcomes if at > back + 1.0]
    assert settled
    assert set(settled) == {200}


async def _products(session: AsyncSession) -> None:
    for _ in range(3):
        await factories.create_product(session)
    await session.commit()
