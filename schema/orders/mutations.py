"""Root mutation fields of orders: translate the input, call the service, map the result."""

from typing import Annotated

import strawberry

from domains.common.exceptions import DomainError
from domains.common.principal import Role
from domains.orders import models
from domains.orders import service as orders_service
from schema.context import Info
from schema.errors import user_errors_from
from schema.orders.inputs import OrderCancelInput, OrderPlaceInput, OrderStatusUpdateInput
from schema.orders.payloads import OrderCancelPayload, OrderPlacePayload, OrderStatusUpdatePayload
from schema.orders.types import Order
from schema.permissions import requires

INPUT = strawberry.argument(description="What to do; see the input type.")


def _order(info: Info, view: models.OrderView) -> Order:
    # The write changed this order (and maybe product stock): nested fields must not see cached rows.
    loaders = info.context.loaders
    loaders.orders.order_by_id.clear(view.id).prime(view.id, view)
    loaders.orders.items_by_order_id.clear(view.id)
    loaders.products.product_by_id.clear_all()
    return Order.from_model(view)


@strawberry.type
class OrdersMutation:
    @strawberry.mutation(
        description="Place an order: all or nothing; stock is taken atomically and prices are snapshotted. "
        "Signed-in users. userErrors: REQUIRED, TOO_LONG, INVALID, DUPLICATE, NOT_FOUND, OUT_OF_STOCK, "
        "IDEMPOTENCY_KEY_REUSED.",
        extensions=requires(),
    )
    async def order_place(self, info: Info, input: Annotated[OrderPlaceInput, INPUT]) -> OrderPlacePayload:
        try:
            order_place = input.to_input()
            async with info.context.db.transaction() as session:
                order = await orders_service.place_order(session, info.context.principal, input=order_place)
        except DomainError as exc:
            return OrderPlacePayload(order=None, user_errors=user_errors_from(exc))
        return OrderPlacePayload(order=_order(info, models.view_of_order(order)), user_errors=[])

    @strawberry.mutation(
        description="Cancel an order while it is PENDING or PAID: your own (staff: any). Its stock is returned "
        "exactly once. userErrors: NOT_FOUND, INVALID_TRANSITION.",
        extensions=requires(),
    )
    async def order_cancel(self, info: Info, input: Annotated[OrderCancelInput, INPUT]) -> OrderCancelPayload:
        try:
            cancel = input.to_input()
            async with info.context.db.transaction() as session:
                view = await orders_service.cancel_order(session, info.context.principal, input=cancel)
        except DomainError as exc:
            return OrderCancelPayload(order=None, user_errors=user_errors_from(exc))
        return OrderCancelPayload(order=_order(info, view), user_errors=[])

    @strawberry.mutation(
        description="Move an order to its next status (see `OrderStatus`). Staff only. "
        "userErrors: NOT_FOUND, INVALID_TRANSITION.",
        extensions=requires(Role.STAFF),
    )
    async def order_status_update(
        self, info: Info, input: Annotated[OrderStatusUpdateInput, INPUT]
    ) -> OrderStatusUpdatePayload:
        try:
            update = input.to_input()
            async with info.context.db.transaction() as session:
                view = await orders_service.change_order_status(session, info.context.principal, input=update)
        except DomainError as exc:
            return OrderStatusUpdatePayload(order=None, user_errors=user_errors_from(exc))
        return OrderStatusUpdatePayload(order=_order(info, view), user_errors=[])
