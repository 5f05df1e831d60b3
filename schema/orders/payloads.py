"""Payloads of order mutations and subscriptions."""

from datetime import datetime
from typing import Any, Self

import strawberry

from domains.orders import models
from schema.context import Info
from schema.errors import USER_ERRORS, UserError
from schema.loaders import AwaitableOrValue, then
from schema.orders.types import Order, OrderStatus


@strawberry.type(description="The result of `orderPlace`.")
class OrderPlacePayload:
    order: Order | None = strawberry.field(description="The order (also when a retry returned the first one).")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of `orderCancel`.")
class OrderCancelPayload:
    order: Order | None = strawberry.field(description="The cancelled order; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of `orderStatusUpdate`.")
class OrderStatusUpdatePayload:
    order: Order | None = strawberry.field(description="The order in its new status; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


def _current_order(root: "OrderStatusChange", info: Info) -> AwaitableOrValue[Order]:
    return then(info.context.loaders.orders.order_by_id.load(root.order_pk), Order.from_required)


@strawberry.type(description="An order moved from one status to another (`orderStatusChanged`).")
class OrderStatusChange:
    order_pk: strawberry.Private[int]
    order: AwaitableOrValue[Order] = strawberry.field(
        resolver=_current_order, graphql_type=Order, description="The order as it is now."
    )
    previous_status: OrderStatus = strawberry.field(description="The status it left.")  # type: ignore[valid-type]
    status: OrderStatus = strawberry.field(description="The status it is in now.")  # type: ignore[valid-type]
    changed_at: datetime = strawberry.field(description="When the change was committed.")

    @classmethod
    def from_event(cls, payload: dict[str, Any], order_pk: int) -> Self:
        return cls(
            order_pk=order_pk,
            previous_status=models.OrderStatus(payload["previousStatus"]),
            status=models.OrderStatus(payload["status"]),
            changed_at=datetime.fromisoformat(payload["changedAt"]),
        )
