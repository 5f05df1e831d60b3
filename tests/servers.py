"""The app under a real uvicorn process of its own, for tests that need a real server (and its pid)."""

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 30
STOP_SECONDS = 15
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """Return a loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Uvicorn:
    url: str
    process: asyncio.subprocess.Process
    log: Path | None

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User plus system CPU the server process has used so far."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_mib(self) -> float:
        """The server process's resident set, in MiB."""
        with open(f"/proc/{self.pid}/status") as status:
            line = next(line for line in status if line.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024


@asynccontextmanager
async def running_uvicorn(settings: Settings, *, log: Path | None = None, **env: str) -> AsyncIterator[Uvicorn]:
    """Serve the app on a free loopback port with the test database; `env` adds settings; stop its group after."""
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": settings.effective_database_url, "LOG_LEVEL": "WARNING", **env}
    with open(log or os.devnull, "wb") as output:  # noqa: ASYNC230 - opened once, before the server starts
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app"),
            *("--host", "127.0.0.1", "--port", str(port)),
            "--no-proxy-headers",  # the app believes X-Forwarded-For from TRUSTED_PROXIES only
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    server = Uvicorn(f"http://127.0.0.1:{port}", process, log)
    try:
        await _wait_until_up(server.url)
        yield server
    finally:
        await _stop(process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_SECONDS)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def _wait_until_up(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(STARTUP_SECONDS * 10):
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail("the server did not start")
