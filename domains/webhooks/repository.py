"""SQL of webhook endpoints and deliveries; no rules here (see service.py)."""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.keyset import (
    Ordering,
    Page,
    PageRequest,
    SortKey,
    attribute_key,
    keyset_select,
    keyset_window,
    page_parameters,
    to_page,
)
from domains.webhooks.models import (
    DELIVERY_VIEW_COLUMNS,
    WEBHOOK_VIEW_COLUMNS,
    DeliveryStatus,
    DeliveryView,
    Webhook,
    WebhookDelivery,
    WebhookView,
)

WEBHOOK_ORDERING = Ordering(SortKey("CREATED_AT", Webhook.created_at, "datetime"), descending=True)
DELIVERY_ORDERING = Ordering(SortKey("CREATED_AT", WebhookDelivery.created_at, "datetime"), descending=True)


def _webhooks() -> Select[Any]:
    return select(*WEBHOOK_VIEW_COLUMNS)


async def get_webhook(session: AsyncSession, webhook_id: int) -> Webhook | None:
    return await session.get(Webhook, webhook_id)


async def get_webhooks_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[WebhookView]:
    return [WebhookView(*row) for row in await session.execute(_webhooks().where(Webhook.id.in_(ids)))]


async def get_deliveries_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[DeliveryView]:
    stmt = select(*DELIVERY_VIEW_COLUMNS).where(WebhookDelivery.id.in_(ids))
    return [DeliveryView(*row) for row in await session.execute(stmt)]


async def list_webhooks(session: AsyncSession, page: PageRequest) -> Page[WebhookView]:
    stmt = keyset_select(_webhooks(), WEBHOOK_ORDERING, Webhook.id, page)
    rows = [WebhookView(*row) for row in await session.execute(stmt)]
    return to_page(rows, WEBHOOK_ORDERING, page, attribute_key(WEBHOOK_ORDERING))


async def count_webhooks(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(Webhook))).scalar_one())


async def active_webhooks_for(session: AsyncSession, event_type: str) -> list[Webhook]:
    """The active endpoints subscribed to an event type (the JSON list is filtered here: endpoints are few)."""
    rows = (await session.execute(select(Webhook).where(Webhook.is_active.is_(True)).order_by(Webhook.id))).scalars()
    return [row for row in rows if event_type in row.events]


async def list_deliveries_by_webhook_ids(
    session: AsyncSession, webhook_ids: Sequence[int], ordering: Ordering, page: PageRequest
) -> dict[int, list[DeliveryView]]:
    """One page (plus a look-ahead row) of each endpoint's deliveries, in one statement."""
    stmt = select(*DELIVERY_VIEW_COLUMNS).where(WebhookDelivery.webhook_id.in_(webhook_ids))
    inner, on_page, order = keyset_window(stmt, WebhookDelivery.webhook_id, ordering, WebhookDelivery.id, page)
    paged = select(*(inner.c[column.key] for column in DELIVERY_VIEW_COLUMNS)).where(on_page).order_by(*order)
    pages: dict[int, list[DeliveryView]] = defaultdict(list)
    for row in await session.execute(paged, page_parameters(page)):
        view = DeliveryView(*row)
        pages[view.webhook_id].append(view)
    return pages


async def count_deliveries_by_webhook_ids(session: AsyncSession, webhook_ids: Sequence[int]) -> dict[int, int]:
    stmt = (
        select(WebhookDelivery.webhook_id, func.count())
        .where(WebhookDelivery.webhook_id.in_(webhook_ids))
        .group_by(WebhookDelivery.webhook_id)
    )
    return {webhook_id: int(count) for webhook_id, count in (await session.execute(stmt)).all()}


async def delivery_exists(session: AsyncSession, webhook_id: int, event_id: int) -> bool:
    stmt = select(WebhookDelivery.id).where(
        WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.event_id == event_id
    )
    return (await session.execute(stmt)).first() is not None


async def fail_pending_deliveries(session: AsyncSession, webhook_id: int, *, reason: str) -> None:
    """Give up every pending delivery of an endpoint (it was disabled)."""
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.status == DeliveryStatus.PENDING.value)
        .values(status=DeliveryStatus.FAILED.value, next_attempt_at=None, locked_until=None, last_error=reason)
    )
