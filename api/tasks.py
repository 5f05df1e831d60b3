"""The task queue at the edge: the broker of a deployment, the jobs' settings, the worker's life cycle.

`api/task_worker.py` builds the worker's broker and the scheduler from these; the API builds its own
broker (api/app.py) to put tasks on the queue, or to run them in-process without Redis. Each worker
process builds, at start-up, one engine and one `httpx.AsyncClient` that all its tasks
share, serves its own /metrics (WORKER_METRICS_PORT) and samples the queue's backlog; all of it is
closed at shutdown. The API builds its own client broker (api/app.py) to put tasks on the queue.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import structlog
from prometheus_client import start_http_server
from redis.asyncio import Redis
from taskiq import AsyncBroker, TaskiqEvents, TaskiqScheduler, TaskiqState
from taskiq_redis import RedisStreamBroker

from api.db import create_engine, create_sessionmaker
from api.observability import configure_logging
from api.settings import Settings
from domains.common.attempts import RetryPolicy
from domains.common.background import running, stop
from tasks import metrics, sender
from tasks.config import TaskConfig
from tasks.jobs import PURGE, REDRIVE, RUNTIME, Runtime, send
from tasks.mailer import SmtpConfig
from tasks.queue import WORKER_SOCKET_TIMEOUT_SECONDS, InProcessBroker, JobSchedule, create_broker

logger = structlog.get_logger("api.tasks")

BACKLOG_SAMPLE_SECONDS = 5.0
# Jobs the API runs at once in the embedded default, so that they never take the requests' connections.
IN_PROCESS_SLOTS = 4


def task_config(settings: Settings) -> TaskConfig:
    """The jobs' timings and policies, from the settings."""
    return TaskConfig(
        webhook_timeout=timedelta(seconds=settings.webhook_timeout_seconds),
        webhook_retry=RetryPolicy(
            max_attempts=settings.webhook_max_attempts,
            base_delay=timedelta(seconds=settings.webhook_retry_base_seconds),
            max_delay=timedelta(seconds=settings.webhook_retry_max_seconds),
            disable_after=timedelta(hours=settings.webhook_disable_after_hours),
        ),
        webhook_private_targets_allowed=settings.webhook_private_targets_allowed,
        smtp=SmtpConfig(
            url=settings.smtp_url.get_secret_value() if settings.smtp_url else None,
            sender=settings.email_from,
            timeout=settings.smtp_timeout_seconds,
        ),
        redispatch_after=timedelta(seconds=settings.task_redispatch_seconds),
        outbox_retention=timedelta(days=settings.outbox_retention_days),
        delivery_retention=timedelta(days=settings.webhook_delivery_retention_days),
        idempotency_key_retention=timedelta(hours=settings.idempotency_key_retention_hours),
    )


def task_broker(settings: Settings, *, worker: bool = False) -> AsyncBroker:
    """The broker of this deployment: the Redis stream, or in-process without REDIS_URL.

    The API only sends on it, with Redis's short timeout (REDIS_TIMEOUT_SECONDS); a worker reads.
    """
    return create_broker(
        redis_url=settings.redis_url,
        prefix=settings.redis_key_prefix,
        # A message a worker took and never acknowledged goes to another after the longest a task may run.
        reclaim_after=timedelta(seconds=max(settings.task_redispatch_seconds, 2 * settings.webhook_timeout_seconds)),
        socket_timeout=WORKER_SOCKET_TIMEOUT_SECONDS if worker else settings.redis_timeout_seconds,
    )


def job_schedule(settings: Settings) -> JobSchedule:
    return JobSchedule(
        redrive_every=timedelta(seconds=settings.task_redrive_interval_seconds),
        purge_every=timedelta(seconds=settings.task_purge_interval_seconds),
    )


def build_worker(settings: Settings) -> tuple[AsyncBroker, TaskiqScheduler]:
    """The broker a worker process listens on (with its start-up and shutdown) and the scheduler."""
    if settings.redis_url is None:
        msg = "the task worker needs REDIS_URL; without it the API runs the tasks in-process (make run)"
        raise SystemExit(msg)
    broker = task_broker(settings, worker=True)
    config = task_config(settings)

    async def start(state: TaskiqState) -> None:
        configure_logging(settings)
        engine = create_engine(settings)
        sessionmaker = create_sessionmaker(engine)
        state.engine = engine
        http = sender.create_client(timeout=settings.webhook_timeout_seconds)
        setattr(state, RUNTIME, Runtime(sessionmaker, http, config, asyncio.Semaphore(settings.task_concurrency)))
        state.metrics_server = _serve_metrics(settings.worker_metrics_port)
        state.sampler = asyncio.create_task(_sample(broker, state), name="task-backlog-sampler")
        logger.info("tasks.worker_started", metrics_port=settings.worker_metrics_port)

    async def shutdown(state: TaskiqState) -> None:
        await stop(state.sampler)
        runtime: Runtime = getattr(state, RUNTIME)
        await runtime.http.aclose()
        await state.engine.dispose()
        if state.metrics_server is not None:
            state.metrics_server.shutdown()
        logger.info("tasks.worker_stopped")

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, start)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, shutdown)
    return broker, TaskiqScheduler(broker, [job_schedule(settings)])


def _serve_metrics(port: int) -> Any:
    if port == 0:
        return None
    try:
        server, _thread = start_http_server(port)
    except OSError:
        logger.warning("tasks.metrics_port_taken", port=port)
        return None
    return server


async def _sample(broker: AsyncBroker, state: TaskiqState) -> None:
    assert isinstance(broker, RedisStreamBroker)  # noqa: S101 - build_worker refuses to run without Redis
    redis = Redis(connection_pool=broker.connection_pool)
    runtime: Runtime = getattr(state, RUNTIME)
    while True:
        try:
            await metrics.sample_backlog(redis, broker.queue_name, broker.consumer_group_name, runtime.sessionmaker)
        except Exception:
            # Redis or the database away for a moment: the gauges keep their last values; sample again later.
            logger.warning("tasks.backlog_sample_failed", exc_info=True)
        await asyncio.sleep(BACKLOG_SAMPLE_SECONDS)


@contextlib.asynccontextmanager
async def running_in_process(broker: AsyncBroker, settings: Settings, runtime: Runtime) -> AsyncIterator[None]:
    """Run the jobs in this process (no REDIS_URL): the broker runs each task as it is sent (at most
    IN_PROCESS_SLOTS at once), and the periodic jobs are sent here on their schedule. Queued work is
    lost if the process dies."""
    setattr(broker.state, RUNTIME, replace(runtime, slots=asyncio.Semaphore(IN_PROCESS_SLOTS)))
    await broker.startup()

    async def schedule() -> None:
        purge_every = settings.task_purge_interval_seconds
        since_purge = 0
        while True:
            await asyncio.sleep(settings.task_redrive_interval_seconds)
            await send(broker, REDRIVE)
            since_purge += settings.task_redrive_interval_seconds
            if since_purge >= purge_every:
                since_purge = 0
                await send(broker, PURGE)

    try:
        async with running("task-schedule", schedule()):
            yield
    finally:
        if isinstance(broker, InProcessBroker):
            # Tasks in flight finish (a webhook attempt within its timeout) before the engine closes.
            await broker.drain(within=settings.webhook_timeout_seconds + 1)
        await broker.shutdown()
