"""Payloads of order mutations."""

import strawberry

from schema.errors import UserError
from schema.orders.types import Order

USER_ERRORS = "Why the input was refused; empty on success."


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
