"""Use cases of outgoing webhooks: staff manage endpoints; the task worker fans events out and delivers.

Staff register endpoints (`create_webhook`, `update_webhook`, `delete_webhook`). A committed domain
event becomes one delivery row per subscribed endpoint (`plan_deliveries`, run by the worker,
idempotent per event). Each attempt is taken with a lease (`claim_delivery`), signed with the
Standard Webhooks scheme (`signed_request`), and its outcome recorded (`record_attempt`): a 2xx
delivers; a network error, a 5xx or a 429 is retried with exponential backoff and jitter; any other
4xx fails at once. An endpoint whose attempts have all failed for `RetryPolicy.disable_after` is
disabled and the reason kept.
"""

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook as StandardWebhook

from domains.common import attempts
from domains.common.attempts import ERROR_MAX_LENGTH, RetryPolicy
from domains.common.exceptions import ErrorCode, FieldProblem, InvalidInputError
from domains.common.keyset import Page, PageRequest
from domains.common.outbox import OutboxEvent
from domains.common.principal import Principal, Role, require_role, require_system
from domains.common.validation import FrozenInput, in_field_order, validated
from domains.webhooks import repository as webhooks_repository
from domains.webhooks.addresses import UnsafeTargetError, check_target
from domains.webhooks.exceptions import CHOOSE_EVENTS, WebhookNotFoundError
from domains.webhooks.models import (
    DESCRIPTION_MAX_LENGTH,
    URL_MAX_LENGTH,
    DeliveryStatus,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
    WebhookView,
)

SECRET_BYTES = 24

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=URL_MAX_LENGTH)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=DESCRIPTION_MAX_LENGTH)]


class WebhookCreate(FrozenInput):
    """A new endpoint: where to POST, and which events."""

    url: Url
    events: list[WebhookEvent]
    description: Description = ""


class WebhookUpdate(FrozenInput):
    """Changes to an endpoint: only the fields given change. Turning it active again clears its failures."""

    webhook_id: int
    url: Url | None = None
    events: list[WebhookEvent] | None = None
    description: Description | None = None
    is_active: bool | None = None


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Which URLs an endpoint may have: private and loopback addresses only when allowed."""

    allow_private: bool


Checked = TypeVar("Checked", WebhookCreate, WebhookUpdate)

# Which webhook event a domain event (an outbox topic) is, if any.
_ORDER_STATUS_EVENTS = {"CANCELLED": WebhookEvent.ORDER_CANCELLED}
_TOPIC_EVENTS = {
    "OrderPlaced": WebhookEvent.ORDER_PLACED,
    "ProductCreated": WebhookEvent.PRODUCT_CREATED,
    "ProductUpdated": WebhookEvent.PRODUCT_UPDATED,
    "ProductStockAdjusted": WebhookEvent.PRODUCT_UPDATED,
    "ProductDeleted": WebhookEvent.PRODUCT_DELETED,
}


def webhook_event_of(topic: str, payload: dict[str, Any]) -> WebhookEvent | None:
    """The webhook event type of a domain event; None when endpoints cannot subscribe to it."""
    if topic == "OrderStatusChanged":
        return _ORDER_STATUS_EVENTS.get(str(payload.get("status")), WebhookEvent.ORDER_STATUS_CHANGED)
    return _TOPIC_EVENTS.get(topic)


def new_secret() -> str:
    """A signing key in the Standard Webhooks format: `whsec_` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


async def _problems_of_target(url: str | None, targets: TargetPolicy) -> list[FieldProblem]:
    if url is None:
        return []
    try:
        await check_target(url, allow_private=targets.allow_private)
    except UnsafeTargetError as exc:
        return [FieldProblem(ErrorCode.INVALID, str(exc), ("input", "url"))]
    return []


def _problems_of_events(events: Sequence[WebhookEvent] | None) -> list[FieldProblem]:
    if events is not None and not events:
        return [FieldProblem(ErrorCode.REQUIRED, CHOOSE_EVENTS, ("input", "events"))]
    return []


async def _checked(input: Checked, targets: TargetPolicy) -> Checked:
    problems: list[FieldProblem] = []
    try:
        data = validated(type(input), input.model_dump(by_alias=True, exclude_unset=True))
    except InvalidInputError as exc:
        problems.extend(exc.problems)
        malformed = {problem.field[1] for problem in exc.problems if problem.field and len(problem.field) > 1}
        url = None if "url" in malformed else input.url
        events = None if "events" in malformed else input.events
    else:
        url, events = data.url, data.events
    problems += _problems_of_events(events)
    problems += await _problems_of_target(url, targets)
    if problems:
        raise InvalidInputError(in_field_order(type(input), problems))
    return data


def _distinct(events: Sequence[WebhookEvent]) -> list[str]:
    return [event.value for event in dict.fromkeys(events)]


async def list_webhooks(session: AsyncSession, principal: Principal, *, page: PageRequest) -> Page[WebhookView]:
    """The endpoints, newest first (staff only)."""
    require_role(principal, Role.STAFF)
    return await webhooks_repository.list_webhooks(session, page)


async def count_webhooks(session: AsyncSession, principal: Principal) -> int:
    require_role(principal, Role.STAFF)
    return await webhooks_repository.count_webhooks(session)


async def create_webhook(
    session: AsyncSession, principal: Principal, *, input: WebhookCreate, targets: TargetPolicy
) -> tuple[Webhook, str]:
    """Register an endpoint (staff only); return it and its signing secret, which is shown this once."""
    user_id = require_role(principal, Role.STAFF)
    data = await _checked(input, targets)
    secret = new_secret()
    webhook = Webhook(
        url=data.url,
        events=_distinct(data.events),
        description=data.description,
        secret=secret,
        is_active=True,
        created_by_id=user_id,
    )
    session.add(webhook)
    await session.flush()
    return webhook, secret


async def update_webhook(
    session: AsyncSession, principal: Principal, *, input: WebhookUpdate, targets: TargetPolicy
) -> Webhook:
    """Change the given fields of an endpoint (staff only); re-activating it forgets its past failures."""
    require_role(principal, Role.STAFF)
    webhook = await webhooks_repository.get_webhook(session, input.webhook_id)
    if webhook is None:
        raise WebhookNotFoundError
    data = await _checked(input, targets)
    if data.url is not None:
        webhook.url = data.url
    if data.events is not None:
        webhook.events = _distinct(data.events)
    if data.description is not None:
        webhook.description = data.description
    if data.is_active is not None:
        if data.is_active and not webhook.is_active:
            webhook.failing_since = None
            webhook.disabled_reason = None
        webhook.is_active = data.is_active
    await session.flush()
    return webhook


async def delete_webhook(session: AsyncSession, principal: Principal, *, webhook_id: int) -> int:
    """Delete an endpoint and its deliveries (staff only); return its id."""
    require_role(principal, Role.STAFF)
    webhook = await webhooks_repository.get_webhook(session, webhook_id)
    if webhook is None:
        raise WebhookNotFoundError
    await session.delete(webhook)
    await session.flush()
    return webhook_id


async def plan_deliveries(
    session: AsyncSession, principal: Principal, *, event: OutboxEvent, now: datetime
) -> list[int]:
    """Create a pending delivery of a domain event for each subscribed active endpoint; return their ids.

    Idempotent per event: an endpoint that already has a delivery of it gets no second one. The
    caller puts the returned deliveries on the queue (they are marked as put there now).
    """
    require_system(principal)
    event_type = webhook_event_of(event.topic, event.payload)
    if event_type is None:
        return []
    deliveries = []
    for webhook in await webhooks_repository.active_webhooks_for(session, event_type.value):
        if await webhooks_repository.delivery_exists(session, webhook.id, event.id):
            continue
        delivery = WebhookDelivery(
            webhook_id=webhook.id,
            event_id=event.id,
            event_type=event_type.value,
            payload={"type": event_type.value, "timestamp": event.created_at.isoformat(), "data": event.payload},
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            dispatched_at=now,
            created_at=now,
        )
        session.add(delivery)
        deliveries.append(delivery)
    await session.flush()
    return [delivery.id for delivery in deliveries]


async def redrive_deliveries(
    session: AsyncSession, principal: Principal, *, now: datetime, redispatch_after: timedelta, limit: int = 500
) -> list[int]:
    """The due deliveries to put on the queue again: retries whose time has come, and any whose message was lost.

    A delivery already put on the queue within `redispatch_after` is left alone, so a backlog is not
    multiplied; the ones returned are marked as put on it now.
    """
    require_system(principal)
    return await attempts.take_due(
        session, WebhookDelivery, now=now, dispatched_before=now - redispatch_after, limit=limit
    )


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """One attempt of a delivery: where to POST what, with which headers."""

    delivery_id: int
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def message_id(event_id: int) -> str:
    """The `webhook-id` of an event's deliveries: the same on every attempt, for receivers to deduplicate."""
    return f"evt_{event_id}"


def signed_request(delivery: WebhookDelivery, webhook: Webhook, *, now: datetime) -> SignedRequest:
    """The signed POST of one attempt (Standard Webhooks: HMAC-SHA256 over "id.timestamp.body")."""
    body = orjson.dumps(delivery.payload)
    msg_id = message_id(delivery.event_id)
    signature = StandardWebhook(webhook.secret).sign(msg_id, now, body.decode())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    return SignedRequest(delivery_id=delivery.id, url=webhook.url, body=body, headers=headers)


async def claim_delivery(
    session: AsyncSession, principal: Principal, delivery_id: int, *, now: datetime, lease: timedelta
) -> SignedRequest | None:
    """Take a due, pending delivery for one attempt, for at most `lease`, and sign it; None if done, held or not due."""
    require_system(principal)
    if not await attempts.claim(session, WebhookDelivery, delivery_id, now=now, until=now + lease):
        return None
    delivery = await session.get(WebhookDelivery, delivery_id)
    webhook = None if delivery is None else await webhooks_repository.get_webhook(session, delivery.webhook_id)
    if delivery is None or webhook is None:
        return None
    return signed_request(delivery, webhook, now=now)


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one attempt got: a response status, or an error before any response."""

    status: int | None = None
    error: str | None = None
    # False for an error that another attempt would meet again (the URL now resolves to a private address).
    retry: bool = True

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        if self.status is None:
            return self.retry
        return self.status >= 500 or self.status == 429

    @property
    def label(self) -> str:
        """The outcome as a metric label."""
        return "delivered" if self.delivered else "retryable" if self.retryable else "refused"


@dataclass(frozen=True, slots=True)
class AttemptRecorded:
    status: DeliveryStatus
    endpoint_disabled: bool  # this attempt turned the endpoint off (every delivery failed too long)


async def record_attempt(
    session: AsyncSession,
    principal: Principal,
    delivery_id: int,
    outcome: AttemptOutcome,
    *,
    now: datetime,
    retry: RetryPolicy,
) -> AttemptRecorded | None:
    """Record an attempt's outcome on its delivery and endpoint (None: the endpoint was deleted meanwhile)."""
    require_system(principal)
    delivery = await session.get(WebhookDelivery, delivery_id)
    webhook = None if delivery is None else await webhooks_repository.get_webhook(session, delivery.webhook_id)
    if delivery is None or webhook is None:
        return None
    disabled = False
    delivery.last_response_status = outcome.status
    if outcome.delivered:
        attempts.settle(delivery, DeliveryStatus.DELIVERED.value, error=None)
        delivery.delivered_at = now
        webhook.failing_since = None
    else:
        attempts.settle(delivery, DeliveryStatus.FAILED.value, error=outcome.error)
        if outcome.retryable and delivery.attempts < retry.max_attempts:
            attempts.retry_at(delivery, now + retry.delay(delivery.attempts))
    if not outcome.delivered:
        webhook.failing_since = webhook.failing_since or now
        if webhook.is_active and now - webhook.failing_since >= retry.disable_after:
            reason = f"Disabled at {now.isoformat()}: every delivery failed since {webhook.failing_since.isoformat()}."
            webhook.is_active = False
            webhook.disabled_reason = reason
            disabled = True
            await session.flush()
            await webhooks_repository.fail_pending_deliveries(session, webhook.id, reason=reason[:ERROR_MAX_LENGTH])
            await session.refresh(delivery)
    await session.flush()
    return AttemptRecorded(DeliveryStatus(delivery.status), disabled)


async def purge_deliveries(session: AsyncSession, principal: Principal, *, created_before: datetime) -> int:
    """Delete settled deliveries created before a time; return how many."""
    require_system(principal)
    return await attempts.purge_settled(session, WebhookDelivery, created_before=created_before)
