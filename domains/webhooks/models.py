"""Outgoing webhooks: the endpoints staff register and each delivery of an event to one of them."""

from dataclasses import fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from domains.common.attempts import Attempted
from domains.common.base import Base, TimestampMixin, UTCDateTime
from domains.common.views import view

URL_MAX_LENGTH = 2048
DESCRIPTION_MAX_LENGTH = 500


class WebhookEvent(StrEnum):
    """What an endpoint can subscribe to (SPEC §3 Webhooks)."""

    ORDER_PLACED = "ORDER_PLACED"
    ORDER_STATUS_CHANGED = "ORDER_STATUS_CHANGED"
    ORDER_CANCELLED = "ORDER_CANCELLED"
    PRODUCT_CREATED = "PRODUCT_CREATED"
    PRODUCT_UPDATED = "PRODUCT_UPDATED"
    PRODUCT_DELETED = "PRODUCT_DELETED"


WEBHOOK_EVENT_DESCRIPTIONS = {
    WebhookEvent.ORDER_PLACED: "An order was placed. data: orderId, total, currency.",
    WebhookEvent.ORDER_STATUS_CHANGED: "An order moved to PAID, SHIPPED or DELIVERED. "
    "data: orderId, previousStatus, status, changedAt.",
    WebhookEvent.ORDER_CANCELLED: "An order was cancelled. data: orderId, previousStatus, status, changedAt.",
    WebhookEvent.PRODUCT_CREATED: "A product was created. data: productId.",
    WebhookEvent.PRODUCT_UPDATED: "A product or its stock changed. data: productId.",
    WebhookEvent.PRODUCT_DELETED: "A product was deleted. data: productId.",
}


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"  # not yet delivered; retried at next_attempt_at
    DELIVERED = "DELIVERED"  # the endpoint answered 2xx
    FAILED = "FAILED"  # given up: a 4xx that is not 429, the attempts ran out, or the endpoint was disabled


DELIVERY_STATUS_DESCRIPTIONS = {
    DeliveryStatus.PENDING: "Not delivered yet; the next attempt is at nextAttemptAt.",
    DeliveryStatus.DELIVERED: "The endpoint answered with a 2xx status.",
    DeliveryStatus.FAILED: "Given up: the endpoint refused it (a 4xx other than 429), every attempt failed, "
    "or the endpoint was disabled.",
}


class Webhook(TimestampMixin, Base):
    __tablename__ = "webhook"
    __table_args__ = (Index(None, "created_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(URL_MAX_LENGTH))
    events: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(DESCRIPTION_MAX_LENGTH), default="", server_default="")
    # The signing key, `whsec_<base64>`; shown to staff once, when the endpoint is created.
    secret: Mapped[str] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    # Since when every delivery attempt has failed (None: the last one succeeded); past the limit the
    # endpoint is disabled and the reason kept.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_reason: Mapped[str | None] = mapped_column(String(200))


class WebhookDelivery(Attempted, Base):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        CheckConstraint("status IN ('PENDING', 'DELIVERED', 'FAILED')", name="status_valid"),
        # One delivery per endpoint and event: handling an event twice creates nothing new.
        UniqueConstraint("webhook_id", "event_id"),
        Index(None, "webhook_id", "created_at", "id"),
        Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"))
    # The outbox event's id: the `webhook-id` header, the same on every attempt. No foreign key:
    # delivered outbox rows are purged, their deliveries kept.
    event_id: Mapped[int] = mapped_column(Integer)
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_response_status: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@view
class WebhookView:
    id: int
    url: str
    events: list[str]
    description: str
    is_active: bool
    failing_since: datetime | None
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


@view
class DeliveryView:
    id: int
    webhook_id: int
    event_id: int
    event_type: str
    status: str
    attempts: int
    last_response_status: int | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


WEBHOOK_VIEW_COLUMNS: list[Any] = [Webhook.__table__.c[f.name] for f in fields(WebhookView)]
DELIVERY_VIEW_COLUMNS: list[Any] = [WebhookDelivery.__table__.c[f.name] for f in fields(DeliveryView)]


def view_of_webhook(webhook: Webhook) -> WebhookView:
    """Build the read view of an endpoint a write just made."""
    return WebhookView(*(getattr(webhook, f.name) for f in fields(WebhookView)))
