"""The background jobs: handle a domain event, deliver a webhook, send an e-mail, re-drive what is late, purge.

Every job is idempotent: the database rows say what is done (an event's `processed_at`, a
delivery's status and lease), so a message handled twice, or lost and sent again by the re-drive
job, changes nothing twice. Jobs call the core's services as the system (`SYSTEM`), with one
session each, and hold no connection while they wait on the network.
"""

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq import AsyncBroker, Context, TaskiqDepends
from taskiq.kicker import AsyncKicker

from domains.common import outbox
from domains.common.base import utcnow
from domains.common.principal import SYSTEM
from domains.emails import service as emails_service
from domains.orders import service as orders_service
from domains.users import service as users_service
from domains.webhooks import service as webhooks_service
from tasks import mailer, metrics, sender
from tasks.config import TaskConfig

logger = structlog.get_logger("tasks.jobs")

HANDLE_EVENT = "storefront.handle_event"
DELIVER_WEBHOOK = "storefront.deliver_webhook"
SEND_EMAIL = "storefront.send_email"
REDRIVE = "storefront.redrive"
PURGE = "storefront.purge"
REDRIVE_BATCH = 500
DEFAULT_SLOTS = 10


@dataclass(frozen=True, slots=True)
class Runtime:
    """What the jobs of one process share: one session factory, one HTTP client, the settings, and slots.

    At most `slots` jobs run at once in the process: in the API (the embedded default) a re-drive of
    hundreds of events must not take the pool's connections from the requests.
    """

    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    config: TaskConfig
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(DEFAULT_SLOTS))


RUNTIME = "runtime"  # the key of the Runtime in the broker's state


def _runtime(context: Context) -> Runtime:
    runtime: Runtime = getattr(context.state, RUNTIME)
    return runtime


async def enqueue(broker: AsyncBroker, task_name: str, ids: Sequence[int], *, redriven: bool = False) -> None:
    """Put one message per id on the queue for a task."""
    labels: dict[str, Any] = {metrics.REDRIVEN: 1} if redriven else {}
    kicker: AsyncKicker[Any, Any] = AsyncKicker(task_name=task_name, broker=broker, labels=labels)
    for item in ids:
        await kicker.kiq(item)


async def send(broker: AsyncBroker, task_name: str) -> None:
    """Put one message for a task that takes no arguments (a periodic job) on the queue."""
    await AsyncKicker(task_name=task_name, broker=broker, labels={}).kiq()


async def handle_event(event_id: int, context: Annotated[Context, TaskiqDepends()]) -> int:
    """Record what a committed domain event sets off (webhook deliveries, e-mails), once; start them."""
    runtime = _runtime(context)
    now = utcnow()
    async with runtime.sessionmaker() as session, session.begin():
        event = await outbox.take_for_handling(session, event_id)
        if event is None:
            return 0  # handled already (a duplicate message), or purged
        deliveries = await webhooks_service.plan_deliveries(session, SYSTEM, event=event, now=now)
        emails = await emails_service.plan_emails(session, SYSTEM, event=event, now=now)
        event.processed_at = now
    await enqueue(context.broker, DELIVER_WEBHOOK, deliveries)
    await enqueue(context.broker, SEND_EMAIL, emails)
    return len(deliveries) + len(emails)


async def deliver_webhook(delivery_id: int, context: Annotated[Context, TaskiqDepends()]) -> str | None:
    """Make one attempt of a delivery, if it is due and no other attempt holds it; record the outcome."""
    runtime = _runtime(context)
    config = runtime.config
    async with runtime.sessionmaker() as session, session.begin():
        request = await webhooks_service.claim_delivery(
            session, SYSTEM, delivery_id, now=utcnow(), lease=config.webhook_lease
        )
    if request is None:
        return None  # delivered, given up, held by a live attempt, or not due yet
    outcome = await sender.send(runtime.http, request, allow_private=config.webhook_private_targets_allowed)
    metrics.WEBHOOK_ATTEMPTS.labels(outcome.label).inc()
    async with runtime.sessionmaker() as session, session.begin():
        recorded = await webhooks_service.record_attempt(
            session, SYSTEM, delivery_id, outcome, now=utcnow(), retry=config.webhook_retry
        )
    status = None if recorded is None else recorded.status.value
    logger.info(
        "webhooks.attempt", delivery_id=delivery_id, status=status, response=outcome.status, error=outcome.error
    )
    if recorded is not None and recorded.endpoint_disabled:
        metrics.WEBHOOKS_DISABLED.inc()
        logger.warning("webhooks.endpoint_disabled", delivery_id=delivery_id, url=request.url)
    return status


async def send_email(email_id: int, context: Annotated[Context, TaskiqDepends()]) -> str | None:
    """Make one sending attempt of an e-mail, if it is due and no other attempt holds it; record the outcome."""
    runtime = _runtime(context)
    config = runtime.config
    async with runtime.sessionmaker() as session, session.begin():
        email = await emails_service.claim_email(session, SYSTEM, email_id, now=utcnow(), lease=config.smtp_lease)
    if email is None:
        return None
    outcome = await mailer.send(config.smtp, email)
    metrics.EMAIL_ATTEMPTS.labels(outcome.label).inc()
    async with runtime.sessionmaker() as session, session.begin():
        status = await emails_service.record_email(
            session, SYSTEM, email_id, outcome, now=utcnow(), retry=config.webhook_retry
        )
    if outcome.error is not None:
        logger.warning("emails.attempt_failed", email_id=email_id, status=status, error=outcome.error)
    return None if status is None else status.value


async def redrive(context: Annotated[Context, TaskiqDepends()]) -> dict[str, int]:
    """Put on the queue again the events not handled in time and the deliveries whose (next) attempt is due."""
    runtime = _runtime(context)
    now = utcnow()
    window = runtime.config.redispatch_after
    async with runtime.sessionmaker() as session, session.begin():
        events = await outbox.take_undispatched(session, now=now, dispatched_before=now - window, limit=REDRIVE_BATCH)
        deliveries = await webhooks_service.redrive_deliveries(
            session, SYSTEM, now=now, redispatch_after=window, limit=REDRIVE_BATCH
        )
        emails = await emails_service.redrive_emails(
            session, SYSTEM, now=now, redispatch_after=window, limit=REDRIVE_BATCH
        )
    await enqueue(context.broker, HANDLE_EVENT, events, redriven=True)
    await enqueue(context.broker, DELIVER_WEBHOOK, deliveries, redriven=True)
    await enqueue(context.broker, SEND_EMAIL, emails, redriven=True)
    redriven = {"events": len(events), "deliveries": len(deliveries), "emails": len(emails)}
    if any(redriven.values()):
        logger.info("tasks.redriven", **redriven)
    return redriven


async def purge(context: Annotated[Context, TaskiqDepends()]) -> dict[str, int]:
    """Delete what is past its retention: handled outbox rows, settled deliveries, expired refresh tokens, old keys."""
    runtime = _runtime(context)
    config = runtime.config
    now = utcnow()
    async with runtime.sessionmaker() as session, session.begin():
        purged = {
            "outbox_events": await outbox.purge_handed_on(session, created_before=now - config.outbox_retention),
            "webhook_deliveries": await webhooks_service.purge_deliveries(
                session, SYSTEM, created_before=now - config.delivery_retention
            ),
            "emails": await emails_service.purge_emails(
                session, SYSTEM, created_before=now - config.delivery_retention
            ),
            "refresh_tokens": await users_service.purge_expired_refresh_tokens(
                session, SYSTEM, expired_before=now - config.refresh_token_retention
            ),
            "idempotency_keys": await orders_service.forget_idempotency_keys(
                session, SYSTEM, placed_before=now - config.idempotency_key_retention
            ),
        }
    logger.info("tasks.purged", **purged)
    return purged


JOBS: dict[str, Callable[..., Awaitable[Any]]] = {
    HANDLE_EVENT: handle_event,
    DELIVER_WEBHOOK: deliver_webhook,
    SEND_EMAIL: send_email,
    REDRIVE: redrive,
    PURGE: purge,
}


def _in_a_slot(job: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(job)
    async def run(*args: Any, context: Annotated[Context, TaskiqDepends()], **kwargs: Any) -> Any:
        async with _runtime(context).slots:
            return await job(*args, context=context, **kwargs)

    return run


def register(broker: AsyncBroker) -> AsyncBroker:
    """Register every job on a broker (each run in one of the process's slots), with the task metrics."""
    for name, job in JOBS.items():
        broker.register_task(_in_a_slot(job), task_name=name)
    return broker.with_middlewares(metrics.TaskMetrics())
