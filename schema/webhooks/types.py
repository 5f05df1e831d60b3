"""GraphQL types of outgoing webhooks (staff only)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Self

import strawberry

from domains.webhooks import models
from domains.webhooks import repository as webhooks_repository
from domains.webhooks.service import message_id
from schema.cache_control import PRIVATE
from schema.context import Info
from schema.enums import described_enum
from schema.loaders import AwaitableOrValue
from schema.relations import fixed_order
from schema.relay.connection import After, Before, Connection, First, Last
from schema.relay.node import Node
from schema.webhooks.loaders import WEBHOOK_DELIVERIES

WebhookEvent = described_enum(
    models.WebhookEvent,
    name="WebhookEvent",
    description="What a webhook endpoint can subscribe to; the `type` of a delivery's body.",
    values=models.WEBHOOK_EVENT_DESCRIPTIONS,
)
WebhookDeliveryStatus = described_enum(
    models.DeliveryStatus,
    name="WebhookDeliveryStatus",
    description="Where a delivery stands.",
    values=models.DELIVERY_STATUS_DESCRIPTIONS,
)


@strawberry.type(
    description="One event sent (or to be sent) to one webhook endpoint, with its attempts. Staff only.",
    directives=[PRIVATE],
)
class WebhookDelivery(Node):
    NODE_TYPE = "WebhookDelivery"

    event_id: str = strawberry.field(
        description="The event's id, sent as the `webhook-id` header on every attempt: receivers deduplicate by it."
    )
    event_type: WebhookEvent = strawberry.field(description="The event.")  # type: ignore[valid-type]
    status: WebhookDeliveryStatus = strawberry.field(description="Where it stands.")  # type: ignore[valid-type]
    attempts: int = strawberry.field(description="Attempts made so far.")
    last_response_status: int | None = strawberry.field(
        description="The HTTP status of the last attempt; null before any, or when no response came."
    )
    next_attempt_at: datetime | None = strawberry.field(description="When it is tried next; null once settled.")
    delivered_at: datetime | None = strawberry.field(description="When the endpoint accepted it; null until then.")
    created_at: datetime = strawberry.field(description="When the event was planned for this endpoint.")

    @classmethod
    def from_model(cls, row: models.DeliveryView) -> Self:
        return cls(
            id=cls.global_id(row.id),
            event_id=message_id(row.event_id),
            event_type=models.WebhookEvent(row.event_type),
            status=models.DeliveryStatus(row.status),
            attempts=row.attempts,
            last_response_status=row.last_response_status,
            next_attempt_at=row.next_attempt_at,
            delivered_at=row.delivered_at,
            created_at=row.created_at,
        )

    @classmethod
    async def resolve_nodes(cls, info: Info, pks: Sequence[int]) -> list[Self | None]:
        rows = await info.context.loaders.webhooks.delivery_by_id.load_many(pks)
        return [cls.from_optional(row) for row in rows]


_WEBHOOK_DELIVERIES = WEBHOOK_DELIVERIES.resolver(
    key=lambda webhook: webhook.pk,
    page=fixed_order(webhooks_repository.DELIVERY_ORDERING),
    convert=WebhookDelivery.from_model,
)


@strawberry.type(
    description="An endpoint that receives signed POSTs of the events it subscribes to. Staff only; its signing "
    "secret is shown once, by `webhookCreate`.",
    directives=[PRIVATE],
)
class Webhook(Node):
    NODE_TYPE = "Webhook"

    pk: strawberry.Private[int]
    url: str = strawberry.field(description="Where the events are POSTed.")
    events: list[WebhookEvent] = strawberry.field(description="The events it receives.")  # type: ignore[valid-type]
    is_active: bool = strawberry.field(
        description="Whether it receives events. An endpoint whose deliveries all failed for 24 hours is turned "
        "off (see `disabledReason`); `webhookUpdate` with `isActive: true` turns it on again."
    )
    disabled_reason: str | None = strawberry.field(description="Why it was turned off automatically; else null.")
    description: str = strawberry.field(description="What it is for, as staff wrote it.")
    created_at: datetime = strawberry.field(description="When it was registered.")

    @classmethod
    def from_model(cls, row: models.WebhookView) -> Self:
        return cls(
            id=cls.global_id(row.id),
            pk=row.id,
            url=row.url,
            events=[models.WebhookEvent(event) for event in row.events],
            is_active=row.is_active,
            disabled_reason=row.disabled_reason,
            description=row.description,
            created_at=row.created_at,
        )

    @classmethod
    async def resolve_nodes(cls, info: Info, pks: Sequence[int]) -> list[Self | None]:
        rows = await info.context.loaders.webhooks.webhook_by_id.load_many(pks)
        return [cls.from_optional(row) for row in rows]

    @strawberry.field(
        description="Deliveries to this endpoint, newest first.",
        graphql_type=Connection[WebhookDelivery],
        metadata=_WEBHOOK_DELIVERIES.metadata,
    )
    def deliveries(
        self, info: Info, first: First = None, after: After = None, last: Last = None, before: Before = None
    ) -> AwaitableOrValue[Connection[WebhookDelivery]]:
        return _WEBHOOK_DELIVERIES.resolve(
            info.context.loaders, self, first=first, after=after, last=last, before=before
        )
