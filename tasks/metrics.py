"""The task queue's metrics: served by the worker on its own port, and by the API in the embedded default."""

from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from domains.common import outbox
from domains.common.base import utcnow

# The label a re-drive puts on what it puts on the queue again (a retry, or a message that was lost).
REDRIVEN = "redriven"

TASKS_RECEIVED = Counter("tasks_received_total", "Tasks a worker took off the queue, by task.", ["task"])
TASKS_SUCCEEDED = Counter("tasks_succeeded_total", "Tasks that ran to the end, by task.", ["task"])
TASKS_FAILED = Counter(
    "tasks_failed_total", "Tasks that raised (the re-drive job tries them again), by task.", ["task"]
)
TASKS_RETRIED = Counter(
    "tasks_retried_total", "Tasks put on the queue again by the re-drive job (a retry, or a lost message).", ["task"]
)
TASK_DURATION = Histogram(
    "task_duration_seconds",
    "How long tasks ran, by task.",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge(
    "task_queue_depth",
    "Messages on the task queue: waiting (not taken yet) and taken (by a worker, not yet acknowledged).",
    ["state"],
    multiprocess_mode="livemax",
)
OUTBOX_OLDEST_UNHANDLED_AGE = Gauge(
    "outbox_oldest_unhandled_age_seconds",
    "Age of the oldest domain event no task has handled yet; 0 when none.",
    multiprocess_mode="livemax",
)
WEBHOOK_ATTEMPTS = Counter(
    "webhook_attempts_total",
    "Webhook delivery attempts by outcome: delivered (2xx), retryable (network error, 5xx, 429), "
    "refused (another status, or a target that is not allowed).",
    ["outcome"],
)
WEBHOOKS_DISABLED = Counter(
    "webhooks_disabled_total", "Webhook endpoints turned off because every delivery failed for too long."
)
EMAIL_ATTEMPTS = Counter(
    "email_attempts_total",
    "E-mail sending attempts by outcome: sent, logged (no SMTP server: development), retryable "
    "(a connection failure or a 4xx reply), refused (a 5xx reply).",
    ["outcome"],
)


class TaskMetrics(TaskiqMiddleware):
    """Count what the worker runs, and how long it takes."""

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        TASKS_RECEIVED.labels(message.task_name).inc()
        if message.labels.get(REDRIVEN):
            TASKS_RETRIED.labels(message.task_name).inc()
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        (TASKS_FAILED if result.is_err else TASKS_SUCCEEDED).labels(message.task_name).inc()
        TASK_DURATION.labels(message.task_name).observe(result.execution_time)


async def sample_backlog(redis: Redis, stream: str, group: str, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Set the queue depth (from the stream's consumer group) and the age of the oldest unhandled event."""
    for info in await redis.xinfo_groups(stream):
        name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
        if name == group:
            QUEUE_DEPTH.labels("waiting").set(info.get("lag") or 0)
            QUEUE_DEPTH.labels("taken").set(info["pending"])
    async with sessionmaker() as session:
        oldest = await outbox.oldest_unhandled(session)
    OUTBOX_OLDEST_UNHANDLED_AGE.set(0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds()))
