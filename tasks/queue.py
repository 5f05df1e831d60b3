"""The task queue: taskiq with taskiq-redis's RedisStreamBroker, or in-process in the embedded default.

- With Redis, messages go on one stream read by one consumer group: a worker acknowledges a
  message after its task ran (taskiq's default, "when saved"), and a message a dead worker had
  taken is claimed by another after `idle_timeout`. The outbox and delivery rows stay the source of
  truth: the re-drive job (jobs.py) puts on the queue again whatever was not handled in time, so a
  message lost with a Redis restart or trimmed from the stream only delays.
- Without Redis, `InMemoryBroker` runs each task in the API process right after it is sent:
  nothing to run beside `make run`, and queued work is lost if that process dies (development only).
"""

import asyncio
from datetime import timedelta

from taskiq import AsyncBroker, InMemoryBroker, ScheduledTask, ScheduleSource
from taskiq_redis import RedisStreamBroker

from tasks.jobs import PURGE, REDRIVE, register

STREAM_MAX_LENGTH = 100_000  # entries kept on the stream (approximately); handled ones go first
IN_PROCESS_CONCURRENCY = 50
XREAD_BLOCK_MS = 2000
# A worker's socket timeout: longer than its blocking read.
WORKER_SOCKET_TIMEOUT_SECONDS = XREAD_BLOCK_MS / 1000 + 5
CONNECT_TIMEOUT_SECONDS = 5.0


class InProcessBroker(InMemoryBroker):
    """taskiq's in-memory broker, able to wait for every task it started, those started by tasks too."""

    async def drain(self, within: float) -> None:
        """Wait up to `within` seconds for the running tasks (and any they start); cancel what is left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self._running_tasks and loop.time() < deadline:
            await asyncio.wait(set(self._running_tasks), timeout=deadline - loop.time())
        left = set(self._running_tasks)
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left)


def create_broker(
    *, redis_url: str | None, prefix: str, reclaim_after: timedelta, socket_timeout: float
) -> AsyncBroker:
    """The broker, with every job registered: on a Redis stream when `redis_url` is set, else in-process.

    `socket_timeout` bounds each Redis command (and connecting): the API sends with a short one, so
    a Redis that does not answer costs a write milliseconds, not a hung request; a worker's must be
    longer than its blocking read (XREADGROUP BLOCK).
    """
    broker: AsyncBroker
    if redis_url is None:
        broker = InProcessBroker(max_async_tasks=IN_PROCESS_CONCURRENCY, propagate_exceptions=False)
    else:
        broker = RedisStreamBroker(
            url=redis_url,
            queue_name=f"{prefix}:tasks",
            consumer_group_name=f"{prefix}:workers",
            # A group created after messages were sent (Redis was down when the API started, say)
            # reads them from the stream's start: handling is idempotent, so nothing is skipped.
            consumer_id="0",
            xread_block=XREAD_BLOCK_MS,
            idle_timeout=int(reclaim_after.total_seconds() * 1000),
            unacknowledged_lock_timeout=30,
            maxlen=STREAM_MAX_LENGTH,
            socket_timeout=socket_timeout,
            socket_connect_timeout=min(socket_timeout, CONNECT_TIMEOUT_SECONDS),
        )
    return register(broker)


class JobSchedule(ScheduleSource):
    """The periodic jobs, at intervals from the settings: the re-drive (seconds) and the purge (an hour)."""

    def __init__(self, *, redrive_every: timedelta, purge_every: timedelta) -> None:
        self._redrive_every = redrive_every
        self._purge_every = purge_every

    async def get_schedules(self) -> list[ScheduledTask]:
        return [
            ScheduledTask(
                task_name=REDRIVE, labels={}, args=[], kwargs={}, schedule_id=REDRIVE, interval=self._redrive_every
            ),
            ScheduledTask(
                task_name=PURGE, labels={}, args=[], kwargs={}, schedule_id=PURGE, interval=self._purge_every
            ),
        ]
