"""Background tasks the app keeps beside its requests, and how they stop.

A task is stopped by cancelling it until it ends. One `cancel()` is not enough on Python 3.11:
`asyncio.wait_for` returns the awaited result and drops a cancellation that arrives in the step the
result does (CPython gh-86296, fixed in 3.12 by rebuilding `wait_for` on `asyncio.timeout`).
redis-py sends every command through it when a socket timeout is set, asyncpg connects through it,
so a task cancelled at that moment goes on running, and a shutdown waiting for it never ends.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import structlog

STOP_RETRY_SECONDS = 0.05

logger = structlog.get_logger("api.background")


async def stop(task: "asyncio.Task[Any]") -> None:
    """Cancel the task and wait until it has ended, cancelling again while a cancellation was lost."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=STOP_RETRY_SECONDS)
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("background.failed", task=task.get_name(), exc_info=error)


@contextlib.asynccontextmanager
async def running(name: str, work: Coroutine[Any, Any, None]) -> AsyncIterator["asyncio.Task[None]"]:
    """Run `work` as a named task for as long as the block runs, and stop it when the block ends."""
    task = asyncio.create_task(work, name=name)
    try:
        yield task
    finally:
        await stop(task)
        logger.debug("background.stopped", task=name)
