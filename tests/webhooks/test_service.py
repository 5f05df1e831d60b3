"""The webhook core without HTTP: event mapping, planning, signing, attempts, backoff and disabling."""

import base64
import hashlib
import hmac
import ipaddress
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from domains.common.attempts import RetryPolicy
from domains.common.base import utcnow
from domains.common.exceptions import ErrorCode, ForbiddenError, InvalidInputError
from domains.common.outbox import OutboxEvent
from domains.common.principal import SYSTEM
from domains.webhooks import service
from domains.webhooks.addresses import is_public
from domains.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent
from tests.auth import Account

ALLOW = service.TargetPolicy(allow_private=True)
LEASE = timedelta(seconds=15)
FAST = RetryPolicy(
    max_attempts=4, base_delay=timedelta(seconds=1), max_delay=timedelta(seconds=3), disable_after=timedelta(hours=24)
)


async def _endpoint(session: AsyncSession, staff: Account, *events: WebhookEvent) -> tuple[int, str]:
    create = service.WebhookCreate(url="http://127.0.0.1:9/hook", events=list(events or [WebhookEvent.ORDER_PLACED]))
    webhook, secret = await service.create_webhook(session, staff.principal, input=create, targets=ALLOW)
    return webhook.id, secret


async def _event(session: AsyncSession, topic: str = "OrderPlaced", **payload: str) -> OutboxEvent:
    event = OutboxEvent(topic=topic, payload={"orderId": "T3JkZXI6MQ=="} | payload, created_at=utcnow())
    session.add(event)
    await session.flush()
    return event


def test_domain_events_map_to_webhook_events() -> None:
    assert service.webhook_event_of("OrderPlaced", {}) is WebhookEvent.ORDER_PLACED
    assert service.webhook_event_of("OrderStatusChanged", {"status": "PAID"}) is WebhookEvent.ORDER_STATUS_CHANGED
    assert service.webhook_event_of("OrderStatusChanged", {"status": "CANCELLED"}) is WebhookEvent.ORDER_CANCELLED
    assert service.webhook_event_of("ProductStockAdjusted", {}) is WebhookEvent.PRODUCT_UPDATED
    assert service.webhook_event_of("ProductDeleted", {}) is WebhookEvent.PRODUCT_DELETED
    assert service.webhook_event_of("ReviewCreated", {}) is None


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),  # cloud metadata
        ("0.0.0.0", False),  # noqa: S104 - an address to classify, not one to bind
        ("224.0.0.1", False),
        ("::1", False),
        ("fd00::1", False),
        ("fe80::1", False),
        ("::ffff:10.0.0.1", False),  # IPv4-mapped private
    ],
)
def test_only_global_unicast_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


async def test_only_staff_create_webhooks(db_session: AsyncSession, customer: Account) -> None:
    create = service.WebhookCreate(url="http://127.0.0.1/hook", events=[WebhookEvent.ORDER_PLACED])
    with pytest.raises(ForbiddenError):
        await service.create_webhook(db_session, customer.principal, input=create, targets=ALLOW)


async def test_a_name_that_resolves_to_loopback_is_refused_when_private_targets_are_not_allowed(
    db_session: AsyncSession, staff: Account
) -> None:
    create = service.WebhookCreate(url="http://localhost:8080/hook", events=[WebhookEvent.ORDER_PLACED])
    with pytest.raises(InvalidInputError) as refused:
        await service.create_webhook(
            db_session, staff.principal, input=create, targets=service.TargetPolicy(allow_private=False)
        )
    assert [(p.code, p.field) for p in refused.value.problems] == [(ErrorCode.INVALID, ("input", "url"))]


async def _claim(session: AsyncSession, delivery_id: int, now: datetime) -> service.SignedRequest | None:
    return await service.claim_delivery(session, SYSTEM, delivery_id, now=now, lease=LEASE)


async def _plan(session: AsyncSession, event: OutboxEvent) -> list[int]:
    return await service.plan_deliveries(session, SYSTEM, event=event, now=utcnow())


async def _record(session: AsyncSession, delivery_id: int, outcome: service.AttemptOutcome, now: datetime) -> Any:
    recorded = await service.record_attempt(session, SYSTEM, delivery_id, outcome, now=now, retry=FAST)
    assert recorded is not None
    return recorded.status


async def test_the_delivery_jobs_are_the_systems_only(db_session: AsyncSession, staff: Account) -> None:
    event = await _event(db_session)
    with pytest.raises(ForbiddenError):
        await service.plan_deliveries(db_session, staff.principal, event=event, now=utcnow())
    with pytest.raises(ForbiddenError):
        await service.claim_delivery(db_session, staff.principal, 1, now=utcnow(), lease=LEASE)


async def test_planning_is_idempotent_and_skips_inactive_and_unsubscribed_endpoints(
    db_session: AsyncSession, staff: Account
) -> None:
    # given
    subscribed, _ = await _endpoint(db_session, staff, WebhookEvent.ORDER_PLACED)
    await _endpoint(db_session, staff, WebhookEvent.PRODUCT_CREATED)
    inactive, _ = await _endpoint(db_session, staff, WebhookEvent.ORDER_PLACED)
    await service.update_webhook(
        db_session, staff.principal, input=service.WebhookUpdate(webhook_id=inactive, is_active=False), targets=ALLOW
    )
    event = await _event(db_session)

    # when
    first = await _plan(db_session, event)
    second = await _plan(db_session, event)

    # then
    assert len(first) == 1
    assert second == []
    delivery = await db_session.get(WebhookDelivery, first[0])
    assert delivery is not None
    assert delivery.webhook_id == subscribed


async def test_a_signed_request_verifies_with_the_secret_and_fails_when_the_body_is_tampered(
    db_session: AsyncSession, staff: Account
) -> None:
    # given
    _, secret = await _endpoint(db_session, staff)
    event = await _event(db_session, total="12.50")
    (delivery_id,) = await _plan(db_session, event)
    now = utcnow()

    # when
    request = await _claim(db_session, delivery_id, now)

    # then: HMAC-SHA256 over "id.timestamp.body" with the key after "whsec_", computed here independently
    assert request is not None
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert request.headers["webhook-signature"] == expected
    assert request.headers["webhook-id"] == f"evt_{event.id}"
    assert request.headers["webhook-timestamp"] == str(int(now.timestamp()))
    body = StandardWebhook(secret).verify(request.body, request.headers)
    assert body["type"] == "ORDER_PLACED"
    assert body["data"]["total"] == "12.50"
    tampered = request.body.replace(b"12.50", b"0.01")
    with pytest.raises(WebhookVerificationError, match="signature"):
        StandardWebhook(secret).verify(tampered, request.headers)


async def test_claiming_holds_a_delivery_for_the_lease_only(db_session: AsyncSession, staff: Account) -> None:
    # given
    await _endpoint(db_session, staff)
    (delivery_id,) = await _plan(db_session, await _event(db_session))
    now = utcnow()

    # when
    first = await _claim(db_session, delivery_id, now)
    while_held = await _claim(db_session, delivery_id, now)
    after_lease = await _claim(db_session, delivery_id, now + LEASE + timedelta(seconds=1))

    # then
    assert first is not None
    assert while_held is None
    assert after_lease is not None


async def test_5xx_and_network_errors_retry_with_growing_delays_until_the_attempts_run_out(
    db_session: AsyncSession, staff: Account
) -> None:
    # given
    await _endpoint(db_session, staff)
    (delivery_id,) = await _plan(db_session, await _event(db_session))
    outcomes = [service.AttemptOutcome(status=500), service.AttemptOutcome(error="connect timeout")]
    outcomes += [service.AttemptOutcome(status=429), service.AttemptOutcome(status=503)]
    now = utcnow()
    statuses, delays = [], []

    # when: each attempt made when the previous one said to
    for outcome in outcomes:
        assert await _claim(db_session, delivery_id, now) is not None
        assert await _claim(db_session, delivery_id, now) is None  # held by the attempt
        statuses.append(await _record(db_session, delivery_id, outcome, now))
        delivery = await db_session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        if delivery.next_attempt_at is not None:
            assert await _claim(db_session, delivery_id, now) is None  # not due yet
            delays.append((delivery.next_attempt_at - now).total_seconds())
            now = delivery.next_attempt_at

    # then
    assert delivery is not None
    assert statuses == ["PENDING", "PENDING", "PENDING", "FAILED"]
    assert 0.75 <= delays[0] <= 1
    assert 1.5 <= delays[1] <= 2
    assert 2.25 <= delays[2] <= 3  # capped at 3 s
    assert delivery.attempts == 4
    assert delivery.last_response_status == 503
    webhook = await db_session.get(Webhook, delivery.webhook_id)
    assert webhook is not None
    assert webhook.failing_since is not None
    assert webhook.is_active


async def test_a_4xx_other_than_429_and_an_unsafe_target_fail_at_once_and_a_2xx_delivers(
    db_session: AsyncSession, staff: Account
) -> None:
    # given
    webhook_id, _ = await _endpoint(db_session, staff)
    planned = [(await _plan(db_session, await _event(db_session)))[0] for _ in range(3)]
    now = utcnow()
    outcomes = [
        service.AttemptOutcome(400),
        service.AttemptOutcome(error="resolves to a private address", retry=False),
        service.AttemptOutcome(204),
    ]

    # when
    results = []
    for delivery_id, outcome in zip(planned, outcomes, strict=True):
        assert await _claim(db_session, delivery_id, now) is not None
        status = await _record(db_session, delivery_id, outcome, now)
        delivery = await db_session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        results.append((status, delivery.next_attempt_at))

    # then
    assert results == [(DeliveryStatus.FAILED, None), (DeliveryStatus.FAILED, None), (DeliveryStatus.DELIVERED, None)]
    webhook = await db_session.get(Webhook, webhook_id)
    assert webhook is not None
    assert webhook.failing_since is None  # the success cleared the endpoint's failure


async def test_an_endpoint_failing_for_the_whole_window_is_disabled_with_its_pending_deliveries(
    db_session: AsyncSession, staff: Account
) -> None:
    # given: an endpoint that failed once, a day ago
    webhook_id, _ = await _endpoint(db_session, staff)
    first_id, other_id = [(await _plan(db_session, await _event(db_session)))[0] for _ in range(2)]
    start = utcnow()
    assert await _claim(db_session, first_id, start) is not None
    await _record(db_session, first_id, service.AttemptOutcome(500), start)

    # when: a day later, still failing
    later = start + timedelta(hours=24)
    assert await _claim(db_session, other_id, later) is not None
    recorded = await service.record_attempt(
        db_session, SYSTEM, other_id, service.AttemptOutcome(502), now=later, retry=FAST
    )

    # then
    webhook = await db_session.get(Webhook, webhook_id)
    assert webhook is not None
    assert recorded == service.AttemptRecorded(DeliveryStatus.FAILED, endpoint_disabled=True)
    assert webhook.is_active is False
    assert webhook.disabled_reason is not None
    assert "every delivery failed" in webhook.disabled_reason
    assert await _claim(db_session, first_id, later) is None  # given up too


async def test_the_redrive_takes_due_deliveries_once_per_window(db_session: AsyncSession, staff: Account) -> None:
    # given: a delivery planned (and put on the queue) now
    await _endpoint(db_session, staff)
    (delivery_id,) = await _plan(db_session, await _event(db_session))
    window = timedelta(seconds=60)
    now = utcnow()

    # when
    at_once = await service.redrive_deliveries(db_session, SYSTEM, now=now, redispatch_after=window)
    after_window = await service.redrive_deliveries(
        db_session, SYSTEM, now=now + window + timedelta(seconds=1), redispatch_after=window
    )
    again = await service.redrive_deliveries(
        db_session, SYSTEM, now=now + window + timedelta(seconds=2), redispatch_after=window
    )

    # then: its message may have been lost: taken again after the window, and once
    assert (at_once, after_window, again) == ([], [delivery_id], [])


def test_the_backoff_doubles_from_the_base_up_to_the_cap_with_jitter_below() -> None:
    policy = RetryPolicy(base_delay=timedelta(seconds=30), max_delay=timedelta(hours=1), jitter=0.25)
    rng = random.Random(7)  # noqa: S311 - a repeatable jitter, not a secret
    delays = [policy.delay(attempt, rng=rng).total_seconds() for attempt in range(1, 11)]
    ceilings = [min(30 * 2 ** (attempt - 1), 3600) for attempt in range(1, 11)]
    assert all(0.75 * ceiling <= delay <= ceiling for delay, ceiling in zip(delays, ceilings, strict=True))
    assert ceilings[-1] == 3600
