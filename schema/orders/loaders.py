"""Per-request loaders of orders, and the relations that go through them (see schema/relations.py).

Each loader sees only the orders the principal may see.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.keyset import Ordering, PageRequest, attribute_key
from domains.common.principal import Principal
from domains.orders import models
from domains.orders import repository as orders_repository
from domains.products import models as products_models
from domains.users.models import UserView
from schema.loaders import ChildrenByParentLoader, CountByParentLoader, PageByParentLoader, RowByKeyLoader
from schema.products.loaders import PRODUCT_CATEGORY
from schema.relations import PageOf, ToMany, ToOne, in_order
from schema.unit_of_work import RequestDb

if TYPE_CHECKING:
    pass


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


ITEM_PRODUCT: ToOne[models.OrderItemView, products_models.ProductView] = ToOne(
    field="product",
    loader=lambda loaders: loaders.products.product_by_id,
    key_of=lambda row: row.product_id,
    below=(PRODUCT_CATEGORY,),
)
ORDER_ITEMS: ToMany[models.OrderView, models.OrderItemView] = ToMany(
    field="items", loader=lambda loaders: loaders.orders.items_by_order_id, key_of=_id, below=(ITEM_PRODUCT,)
)
ORDER_CUSTOMER: ToOne[models.OrderView, UserView] = ToOne(
    field="customer", loader=lambda loaders: loaders.users.user_by_id, key_of=lambda row: row.customer_id
)
CUSTOMER_ORDERS: PageOf[UserView, models.OrderView] = PageOf(
    field="orders",
    pages=lambda loaders: loaders.orders.orders_by_customer_id,
    counts=lambda loaders: loaders.orders.order_count_by_customer_id,
    key_of=lambda row: row.id,
    page_of=in_order(orders_repository.ORDER_ORDERING),
    below=(ORDER_ITEMS, ORDER_CUSTOMER),
)
# What a page of orders can warm for the query below it.
ORDER_RELATIONS = (ORDER_ITEMS, ORDER_CUSTOMER)
