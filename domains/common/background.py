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
# How long past its deadline a block may take to end once cancelled before it is cancelled again.
DEADLINE_RETRY_SECONDS = 1.0

logger = structlog.get_logger("domains.common.background")


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


class Deadline:
    """`asyncio.timeout(seconds)` whose cancellation cannot be lost: past the deadline, the task is
    cancelled again every DEADLINE_RETRY_SECONDS until the block ends, which then raises TimeoutError.

    A timer, not a task of its own: the block runs in the caller's task (a request's operation, at a
    thousand a second, would pay for a task and `asyncio.wait` per request). The retry waits a second,
    not STOP_RETRY_SECONDS: a block that did get its cancellation may still be cleaning up after it.
    As asyncio.timeout, it counts the cancellations it made (`Task.uncancel`), so a cancellation of
    the task from outside still propagates as one.
    """

    __slots__ = ("_cancelling", "_fired", "_handle", "_seconds", "_task")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._fired = 0
        self._cancelling = 0
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> "Deadline":
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._handle = asyncio.get_running_loop().call_later(self._seconds, self._expire, task)
        return self

    def _expire(self, task: "asyncio.Task[Any]") -> None:
        self._fired += 1
        task.cancel()
        self._handle = asyncio.get_running_loop().call_later(DEADLINE_RETRY_SECONDS, self._expire, task)

    async def __aexit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        task, handle = self._task, self._handle
        self._task = self._handle = None  # the timer's callback is this object's method: no cycle left
        if handle is not None:
            handle.cancel()
        if not self._fired or task is None:
            return
        for _ in range(self._fired):
            left = task.uncancel()
        if left <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
