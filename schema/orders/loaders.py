"""Per-request loaders of orders; each sees only the orders the principal may see."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.keyset import Ordering, PageRequest, attribute_key
from domains.common.principal import Principal
from domains.orders import models
from domains.orders import repository as orders_repository
from schema.loaders import ChildrenByParentLoader, CountByParentLoader, PageByParentLoader, RowByKeyLoader
from schema.unit_of_work import RequestDb


class OrderByIdLoader(RowByKeyLoader[int, models.OrderView]):
    pass


class OrderItemByIdLoader(RowByKeyLoader[int, models.OrderItemView]):
    pass


class ItemsByOrderIdLoader(ChildrenByParentLoader[models.OrderItemView]):
    pass


class OrdersByCustomerIdLoader(PageByParentLoader[models.OrderView]):
    pass


class OrderCountByCustomerIdLoader(CountByParentLoader):
    pass


def _id(row: models.OrderView | models.OrderItemView) -> int:
    return row.id


@dataclass(frozen=True, slots=True)
class OrdersLoaders:
    order_by_id: OrderByIdLoader
    order_item_by_id: OrderItemByIdLoader
    items_by_order_id: ItemsByOrderIdLoader
    orders_by_customer_id: OrdersByCustomerIdLoader
    order_count_by_customer_id: OrderCountByCustomerIdLoader

    @classmethod
    def create(cls, db: RequestDb, principal: Principal) -> Self:
        """Build fresh loaders for one request, bound to its principal's visibility."""

        async def orders(session: AsyncSession, ids: Sequence[int]) -> list[models.OrderView]:
            return await orders_repository.get_orders_by_ids(session, principal, ids)

        async def items(session: AsyncSession, ids: Sequence[int]) -> list[models.OrderItemView]:
            return await orders_repository.get_order_items_by_ids(session, principal, ids)

        async def orders_of_customers(
            session: AsyncSession, ids: Sequence[int], ordering: Ordering, page: PageRequest
        ) -> dict[int, list[models.OrderView]]:
            return await orders_repository.list_orders_by_customer_ids(session, principal, ids, ordering, page)

        async def order_counts(session: AsyncSession, ids: Sequence[int]) -> dict[int, int]:
            return await orders_repository.count_orders_by_customer_ids(session, principal, ids)

        return cls(
            order_by_id=OrderByIdLoader(db, orders, _id),
            order_item_by_id=OrderItemByIdLoader(db, items, _id),
            items_by_order_id=ItemsByOrderIdLoader(db, orders_repository.get_items_by_order_ids),
            orders_by_customer_id=OrdersByCustomerIdLoader(db, orders_of_customers, attribute_key),
            order_count_by_customer_id=OrderCountByCustomerIdLoader(db, order_counts),
        )
