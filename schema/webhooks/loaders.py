"""Per-request loaders of webhook endpoints and their deliveries: staff see them, anyone else nothing."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.keyset import Ordering, PageRequest, attribute_key
from domains.common.principal import Principal
from domains.webhooks import models
from domains.webhooks import repository as webhooks_repository
from schema.loaders import CountByParentLoader, PageByParentLoader, RowByKeyLoader
from schema.relations import PageOf, in_order
from schema.unit_of_work import RequestDb


class WebhookByIdLoader(RowByKeyLoader[int, models.WebhookView]):
    pass


class DeliveryByIdLoader(RowByKeyLoader[int, models.DeliveryView]):
    pass


class DeliveriesByWebhookIdLoader(PageByParentLoader[models.DeliveryView]):
    pass


class DeliveryCountByWebhookIdLoader(CountByParentLoader):
    pass


def _id(row: models.WebhookView | models.DeliveryView) -> int:
    return row.id


@dataclass(frozen=True, slots=True)
class WebhooksLoaders:
    webhook_by_id: WebhookByIdLoader
    delivery_by_id: DeliveryByIdLoader
    deliveries_by_webhook_id: DeliveriesByWebhookIdLoader
    delivery_count_by_webhook_id: DeliveryCountByWebhookIdLoader

    @classmethod
    def create(cls, db: RequestDb, principal: Principal) -> Self:
        """Build fresh loaders for one request; they load nothing for a caller who is not staff."""
        staff = principal.is_staff

        async def webhooks(session: AsyncSession, ids: Sequence[int]) -> list[models.WebhookView]:
            return await webhooks_repository.get_webhooks_by_ids(session, ids) if staff else []

        async def deliveries_by_id(session: AsyncSession, ids: Sequence[int]) -> list[models.DeliveryView]:
            return await webhooks_repository.get_deliveries_by_ids(session, ids) if staff else []

        async def deliveries(
            session: AsyncSession, ids: Sequence[int], ordering: Ordering, page: PageRequest
        ) -> dict[int, list[models.DeliveryView]]:
            if not staff:
                return {}
            return await webhooks_repository.list_deliveries_by_webhook_ids(session, ids, ordering, page)

        async def counts(session: AsyncSession, ids: Sequence[int]) -> dict[int, int]:
            return await webhooks_repository.count_deliveries_by_webhook_ids(session, ids) if staff else {}

        return cls(
            webhook_by_id=WebhookByIdLoader(db, webhooks, _id),
            delivery_by_id=DeliveryByIdLoader(db, deliveries_by_id, _id),
            deliveries_by_webhook_id=DeliveriesByWebhookIdLoader(db, deliveries, attribute_key),
            delivery_count_by_webhook_id=DeliveryCountByWebhookIdLoader(db, counts),
        )


WEBHOOK_DELIVERIES: PageOf[models.WebhookView, models.DeliveryView] = PageOf(
    field="deliveries",
    pages=lambda loaders: loaders.webhooks.deliveries_by_webhook_id,
    counts=lambda loaders: loaders.webhooks.delivery_count_by_webhook_id,
    key_of=_id,
    page_of=in_order(webhooks_repository.DELIVERY_ORDERING),
)
# What a page of endpoints can warm for the query below it.
WEBHOOK_RELATIONS = (WEBHOOK_DELIVERIES,)
