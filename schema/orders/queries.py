"""Root query fields of orders."""

from typing import Annotated

import strawberry

from domains.common.ids import decode_typed_id
from domains.common.keyset import page_request
from domains.common.principal import Role
from domains.orders import repository as orders_repository
from schema.cache_control import PRIVATE
from schema.context import Info
from schema.orders.inputs import OrderFilter
from schema.orders.loaders import ORDER_RELATIONS
from schema.orders.types import Order
from schema.permissions import requires
from schema.relations import warm_page
from schema.relay.connection import After, Before, Connection, First, Last


@strawberry.type
class OrdersQuery:
    @strawberry.field(
        description="One order by id; null when it does not exist or is not yours (staff: any).", directives=[PRIVATE]
    )
    async def order(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="Global id of the order.")]
    ) -> Order | None:
        row = await info.context.loaders.orders.order_by_id.load(decode_typed_id(id, "Order"))
        return Order.from_optional(row)

    @strawberry.field(
        description="Every order, newest first, filtered. Staff only.",
        extensions=requires(Role.STAFF),
        directives=[PRIVATE],
    )
    async def orders(
        self,
        info: Info,
        filter: Annotated[OrderFilter | None, strawberry.argument(description="Narrow the list.")] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Order]:
        page = page_request(orders_repository.ORDER_ORDERING, first=first, after=after, last=last, before=before)
        where = filter.to_filter() if filter is not None else orders_repository.OrderFilter()
        db, principal = info.context.db, info.context.principal
        async with db.read() as session:
            rows = await orders_repository.list_orders(session, principal, where, page)
        await warm_page(info, rows.rows, ORDER_RELATIONS)

        async def count() -> int:
            async with db.read() as session:
                return await orders_repository.count_orders(session, principal, where)

        return Connection.from_page(rows, Order.from_model, count)
