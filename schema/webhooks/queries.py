"""Root query fields of webhooks."""

import strawberry

from domains.common.keyset import page_request
from domains.common.principal import Role
from domains.webhooks import repository as webhooks_repository
from domains.webhooks import service as webhooks_service
from schema.cache_control import PRIVATE
from schema.context import Info
from schema.permissions import requires
from schema.relations import warm_page
from schema.relay.connection import After, Before, Connection, First, Last
from schema.webhooks.loaders import WEBHOOK_RELATIONS
from schema.webhooks.types import Webhook


@strawberry.type
class WebhooksQuery:
    @strawberry.field(
        description="The webhook endpoints, newest first. Staff and admins only.",
        extensions=requires(Role.STAFF),
        directives=[PRIVATE],
    )
    async def webhooks(
        self, info: Info, first: First = None, after: After = None, last: Last = None, before: Before = None
    ) -> Connection[Webhook]:
        page = page_request(webhooks_repository.WEBHOOK_ORDERING, first=first, after=after, last=last, before=before)
        db, principal = info.context.db, info.context.principal
        async with db.read() as session:
            rows = await webhooks_service.list_webhooks(session, principal, page=page)
        await warm_page(info, rows.rows, WEBHOOK_RELATIONS)

        async def count() -> int:
            async with db.read() as session:
                return await webhooks_service.count_webhooks(session, principal)

        return Connection.from_page(rows, Webhook.from_model, count)
