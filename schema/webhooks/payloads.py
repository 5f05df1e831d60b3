"""Results of the webhook mutations."""

import strawberry

from schema.errors import USER_ERRORS, UserError
from schema.webhooks.types import Webhook


@strawberry.type(description="The result of `webhookCreate`.")
class WebhookCreatePayload:
    webhook: Webhook | None = strawberry.field(default=None, description="The new endpoint; null when refused.")
    secret: str | None = strawberry.field(
        default=None,
        description="The signing secret, `whsec_<base64 key>`: verify each delivery's `webhook-signature` with it "
        "(Standard Webhooks). Shown this once.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The result of `webhookUpdate`.")
class WebhookUpdatePayload:
    webhook: Webhook | None = strawberry.field(default=None, description="The changed endpoint; null when refused.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The result of `webhookDelete`.")
class WebhookDeletePayload:
    deleted_webhook_id: strawberry.ID | None = strawberry.field(
        default=None, description="Global id of the deleted endpoint, with its deliveries; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)
