"""Root mutation fields of webhooks: translate the input, call the service, map the result."""

from typing import Annotated

import strawberry

from domains.common.exceptions import DomainError
from domains.common.principal import Role
from domains.webhooks import models
from domains.webhooks import service as webhooks_service
from schema.context import Info
from schema.errors import user_errors_from
from schema.permissions import requires
from schema.webhooks.inputs import WebhookCreateInput, WebhookDeleteInput, WebhookUpdateInput
from schema.webhooks.payloads import WebhookCreatePayload, WebhookDeletePayload, WebhookUpdatePayload
from schema.webhooks.types import Webhook

INPUT = strawberry.argument(description="What to do; see the input type.")
STAFF = "Staff and admins only (others: FORBIDDEN; anonymous: UNAUTHENTICATED)."


def _targets(info: Info) -> webhooks_service.TargetPolicy:
    return webhooks_service.TargetPolicy(allow_private=info.context.settings.webhook_private_targets_allowed)


def _webhook(info: Info, webhook: models.Webhook) -> Webhook:
    # The write changed this row: refresh the request's loader so nested fields never see the old one.
    view = models.view_of_webhook(webhook)
    info.context.loaders.webhooks.webhook_by_id.clear(view.id).prime(view.id, view)
    return Webhook.from_model(view)


@strawberry.type
class WebhooksMutation:
    @strawberry.mutation(
        description="Register a webhook endpoint; the answer holds its signing secret, shown this once. Each event "
        "it subscribes to is POSTed to it, signed (Standard Webhooks), and retried with backoff until it answers 2xx. "
        f"{STAFF} userErrors: REQUIRED, TOO_LONG, INVALID (not an http(s) URL, or a private address).",
        extensions=requires(Role.STAFF),
    )
    async def webhook_create(self, info: Info, input: Annotated[WebhookCreateInput, INPUT]) -> WebhookCreatePayload:
        try:
            create = input.to_input()
            async with info.context.db.transaction() as session:
                webhook, secret = await webhooks_service.create_webhook(
                    session, info.context.principal, input=create, targets=_targets(info)
                )
        except DomainError as exc:
            return WebhookCreatePayload(user_errors=user_errors_from(exc))
        return WebhookCreatePayload(webhook=_webhook(info, webhook), secret=secret)

    @strawberry.mutation(
        description=f"Change a webhook endpoint, or turn it off and on. {STAFF} userErrors: NOT_FOUND, REQUIRED, "
        "TOO_LONG, INVALID.",
        extensions=requires(Role.STAFF),
    )
    async def webhook_update(self, info: Info, input: Annotated[WebhookUpdateInput, INPUT]) -> WebhookUpdatePayload:
        try:
            update = input.to_input()
            async with info.context.db.transaction() as session:
                webhook = await webhooks_service.update_webhook(
                    session, info.context.principal, input=update, targets=_targets(info)
                )
        except DomainError as exc:
            return WebhookUpdatePayload(user_errors=user_errors_from(exc))
        return WebhookUpdatePayload(webhook=_webhook(info, webhook))

    @strawberry.mutation(
        description=f"Delete a webhook endpoint and its deliveries; nothing more is sent to it. {STAFF} "
        "userErrors: NOT_FOUND.",
        extensions=requires(Role.STAFF),
    )
    async def webhook_delete(self, info: Info, input: Annotated[WebhookDeleteInput, INPUT]) -> WebhookDeletePayload:
        try:
            async with info.context.db.transaction() as session:
                pk = await webhooks_service.delete_webhook(
                    session, info.context.principal, webhook_id=input.to_webhook_id()
                )
        except DomainError as exc:
            return WebhookDeletePayload(user_errors=user_errors_from(exc))
        info.context.loaders.webhooks.webhook_by_id.clear(pk)
        return WebhookDeletePayload(deleted_webhook_id=Webhook.global_id(pk))
