"""The task worker and the scheduler as real processes (taskiq's command line), stopped by process group."""

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.settings import Settings
from tests.servers import ROOT, STARTUP_SECONDS, STOP_SECONDS, free_port


@dataclass(frozen=True)
class TaskProcess:
    process: asyncio.subprocess.Process
    metrics_url: str | None = None

    def kill(self) -> None:
        """SIGKILL the whole group, as an OOM kill or a lost machine would: nothing is cleaned up."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def tail(log: Path) -> str:
    """The end of a process's log, for a failure message."""
    return log.read_text(errors="replace")[-3000:]


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The settings a task process needs, from the test's settings."""
    assert settings.redis_url is not None
    return {
        **os.environ,
        "DATABASE_URL": settings.effective_database_url,
        "REDIS_URL": settings.redis_url,
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "LOG_LEVEL": "INFO",
        "WEBHOOK_TIMEOUT_SECONDS": "2",
        "WEBHOOK_RETRY_BASE_SECONDS": "1",
        "WEBHOOK_RETRY_MAX_SECONDS": "4",
        "TASK_REDRIVE_INTERVAL_SECONDS": "1",
        "TASK_REDISPATCH_SECONDS": "3",
        **extra,
    }


async def _start(arguments: list[str], env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with open(log, "ab") as output:  # noqa: ASYNC230 - opened once, before the process starts
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "taskiq",
            *arguments,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # a worker child left behind by a killed parent


@contextlib.asynccontextmanager
async def running_worker(env: dict[str, str], log: Path) -> AsyncIterator[TaskProcess]:
    """A task worker (one process), up once its /metrics answers."""
    port = free_port()
    process = await _start(
        ["worker", "api.task_worker:broker", "--workers", "1", "--no-configure-logging", "--shutdown-timeout", "5"],
        env | {"WORKER_METRICS_PORT": str(port)},
        log,
    )
    worker = TaskProcess(process, f"http://127.0.0.1:{port}/metrics")
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(STARTUP_SECONDS * 10):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(worker.metrics_url or "")).status_code == 200:
                        break
                if process.returncode is not None:
                    pytest.fail(f"the worker exited with {process.returncode}: {tail(log)}")
                await asyncio.sleep(0.1)
            else:
                pytest.fail(f"the worker did not start: {tail(log)}")
        yield worker
    finally:
        await _stop(process)


@contextlib.asynccontextmanager
async def running_scheduler(env: dict[str, str], log: Path) -> AsyncIterator[TaskProcess]:
    """The scheduler, sending the periodic jobs (the re-drive every TASK_REDRIVE_INTERVAL_SECONDS)."""
    process = await _start(["scheduler", "api.task_worker:scheduler", "--no-configure-logging"], env, log)
    try:
        yield TaskProcess(process)
    finally:
        await _stop(process)
