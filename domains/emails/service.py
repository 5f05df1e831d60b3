"""Use cases of the store's e-mails: render one per event that calls for it, then send it by attempts.

`plan_emails` (the task worker, once per event) renders the order confirmation or the status
change from the templates beside this module, for the order's customer, and keeps it as a row;
`claim_email` and `record_email` frame one sending attempt (leased, retried like webhook deliveries:
a connection failure or a 4xx reply is tried again later, a 5xx reply fails for good). Without an
SMTP server (development) an e-mail is logged and kept with status LOGGED: the table is the sink.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common import attempts
from domains.common.attempts import RetryPolicy
from domains.common.ids import decode_typed_id
from domains.common.outbox import OutboxEvent
from domains.common.principal import Principal, require_system
from domains.emails import repository as emails_repository
from domains.emails.models import SUBJECT_MAX_LENGTH, EmailKind, EmailMessage, EmailStatus
from domains.orders import models as orders_models
from domains.users import models as users_models

TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
_KINDS = {"OrderPlaced": EmailKind.ORDER_CONFIRMATION, "OrderStatusChanged": EmailKind.ORDER_STATUS}
_STATUS_TEXT = {
    "PENDING": "awaiting payment",
    "PAID": "paid",
    "SHIPPED": "shipped",
    "DELIVERED": "delivered",
    "CANCELLED": "cancelled",
}


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    email_id: int
    to: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class MailOutcome:
    """What one sending attempt got: sent, logged (no server configured), or an error."""

    sent: bool = False
    logged: bool = False
    error: str | None = None
    retry: bool = True  # False: the server refused it for good (a 5xx reply)

    @property
    def label(self) -> str:
        """The outcome as a metric label."""
        return "sent" if self.sent else "logged" if self.logged else "retryable" if self.retry else "refused"


def _render(kind: EmailKind, context: dict[str, Any]) -> tuple[str, str]:
    text = _ENVIRONMENT.get_template(f"{kind.value}.txt").render(context)
    html = _ENVIRONMENT.get_template(f"{kind.value}.html").render(context)
    return text, html


def _subject(kind: EmailKind, context: dict[str, Any]) -> str:
    if kind is EmailKind.ORDER_CONFIRMATION:
        subject = f"Your order {context['number']}"
    else:
        subject = f"Your order {context['number']} is {context['status_text']}"
    return subject[:SUBJECT_MAX_LENGTH]


async def plan_emails(session: AsyncSession, principal: Principal, *, event: OutboxEvent, now: datetime) -> list[int]:
    """Render the e-mail an event calls for, once per event; return the ids of the new ones."""
    require_system(principal)
    kind = _KINDS.get(event.topic)
    if kind is None:
        return []
    if await emails_repository.email_exists(session, event.id, kind.value):
        return []
    order = await session.get(orders_models.Order, decode_typed_id(str(event.payload["orderId"]), "Order"))
    customer = None if order is None else await session.get(users_models.User, order.customer_id)
    if order is None or customer is None:
        return []  # gone since: nobody to write to
    context: dict[str, Any] = {
        "customer": customer.name,
        "number": order.number,
        "currency": order.currency,
        "total": Decimal(order.total_amount),
        "lines": await emails_repository.order_lines(session, order.id),
        "status_text": _STATUS_TEXT.get(str(event.payload.get("status")), ""),
        "previous_text": _STATUS_TEXT.get(str(event.payload.get("previousStatus")), ""),
    }
    text, html = _render(kind, context)
    email = EmailMessage(
        event_id=event.id,
        kind=kind.value,
        to_address=customer.email,
        subject=_subject(kind, context),
        text_body=text,
        html_body=html,
        status=EmailStatus.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        dispatched_at=now,
        created_at=now,
    )
    session.add(email)
    await session.flush()
    return [email.id]


async def claim_email(
    session: AsyncSession, principal: Principal, email_id: int, *, now: datetime, lease: timedelta
) -> OutgoingEmail | None:
    """Take a due, pending e-mail for one sending attempt; None if it is settled, held or not due."""
    require_system(principal)
    if not await attempts.claim(session, EmailMessage, email_id, now=now, until=now + lease):
        return None
    email = await session.get(EmailMessage, email_id)
    if email is None:
        return None
    return OutgoingEmail(email.id, email.to_address, email.subject, email.text_body, email.html_body)


async def record_email(
    session: AsyncSession,
    principal: Principal,
    email_id: int,
    outcome: MailOutcome,
    *,
    now: datetime,
    retry: RetryPolicy,
) -> EmailStatus | None:
    """Record a sending attempt's outcome; return the e-mail's new status."""
    require_system(principal)
    email = await session.get(EmailMessage, email_id)
    if email is None:
        return None
    if outcome.sent or outcome.logged:
        attempts.settle(email, (EmailStatus.SENT if outcome.sent else EmailStatus.LOGGED).value, error=None)
        email.sent_at = now if outcome.sent else None
    else:
        attempts.settle(email, EmailStatus.FAILED.value, error=outcome.error)
        if outcome.retry and email.attempts < retry.max_attempts:
            attempts.retry_at(email, now + retry.delay(email.attempts))
    await session.flush()
    return EmailStatus(email.status)


async def redrive_emails(
    session: AsyncSession, principal: Principal, *, now: datetime, redispatch_after: timedelta, limit: int = 500
) -> list[int]:
    """The e-mails to put on the queue again: retries whose time has come, and any whose message was lost."""
    require_system(principal)
    return await attempts.take_due(
        session, EmailMessage, now=now, dispatched_before=now - redispatch_after, limit=limit
    )


async def purge_emails(session: AsyncSession, principal: Principal, *, created_before: datetime) -> int:
    """Delete settled e-mails created before a time; return how many."""
    require_system(principal)
    return await attempts.purge_settled(session, EmailMessage, created_before=created_before)
