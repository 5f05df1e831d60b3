"""GraphQL inputs of the webhook mutations."""

import strawberry

from domains.common.ids import decode_typed_id
from domains.webhooks import service as webhooks_service
from domains.webhooks.models import DESCRIPTION_MAX_LENGTH, URL_MAX_LENGTH
from schema.webhooks.types import WebhookEvent

URL_RULES = (
    f"an http:// or https:// URL of at most {URL_MAX_LENGTH} characters, whose host resolves to public addresses "
    "only (private and loopback addresses are refused in production)"
)
KEEP = "Omit (or null) to keep the current value."


@strawberry.input(description="A new webhook endpoint.")
class WebhookCreateInput:
    url: str = strawberry.field(description=f"Where to POST the events: {URL_RULES}.")
    events: list[WebhookEvent] = strawberry.field(  # type: ignore[valid-type]
        description="The events to send it, at least one."
    )
    description: str | None = strawberry.field(
        default=None, description=f"What it is for, at most {DESCRIPTION_MAX_LENGTH} characters."
    )

    def to_input(self) -> webhooks_service.WebhookCreate:
        return webhooks_service.WebhookCreate.model_construct(
            url=self.url, events=list(self.events), description=self.description or ""
        )


@strawberry.input(description="Changes to a webhook endpoint.")
class WebhookUpdateInput:
    webhook_id: strawberry.ID = strawberry.field(description="Global id of the endpoint.")
    url: str | None = strawberry.field(default=None, description=f"New URL: {URL_RULES}. {KEEP}")
    events: list[WebhookEvent] | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description=f"The events to send it from now on, at least one. {KEEP}"
    )
    description: str | None = strawberry.field(
        default=None, description=f"What it is for, at most {DESCRIPTION_MAX_LENGTH} characters. {KEEP}"
    )
    is_active: bool | None = strawberry.field(
        default=None, description=f"false: send it nothing; true: send again and forget past failures. {KEEP}"
    )

    def to_input(self) -> webhooks_service.WebhookUpdate:
        return webhooks_service.WebhookUpdate.model_construct(
            webhook_id=decode_typed_id(self.webhook_id, "Webhook"),
            url=self.url,
            events=None if self.events is None else list(self.events),
            description=self.description,
            is_active=self.is_active,
        )


@strawberry.input(description="The webhook endpoint to delete.")
class WebhookDeleteInput:
    webhook_id: strawberry.ID = strawberry.field(description="Global id of the endpoint.")

    def to_webhook_id(self) -> int:
        return decode_typed_id(self.webhook_id, "Webhook")
