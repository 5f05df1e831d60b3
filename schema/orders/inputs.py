"""Inputs of order queries and mutations."""

import strawberry

from domains.common.ids import decode_typed_id
from domains.common.validation import validated
from domains.orders import models, repository
from domains.orders import service as orders_service
from domains.orders.service import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_LINES, MAX_QUANTITY
from schema.orders.types import OrderStatus


@strawberry.input(description="Which orders to list; every field narrows the list.")
class OrderFilter:
    status: OrderStatus | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Only orders in this status."
    )
    customer_id: strawberry.ID | None = strawberry.field(default=None, description="Only this customer's orders.")

    def to_filter(self) -> repository.OrderFilter:
        customer = decode_typed_id(self.customer_id, "User") if self.customer_id is not None else None
        status = models.OrderStatus(self.status) if self.status is not None else None
        return repository.OrderFilter(status=status, customer_id=customer)


@strawberry.input(description="One product and how many units of it.")
class OrderLineInput:
    product_id: strawberry.ID = strawberry.field(description="Global id of a published product; once per order.")
    quantity: int = strawberry.field(description=f"Units, 1–{MAX_QUANTITY}.")


@strawberry.input(description="An order to place.")
class OrderPlaceInput:
    items: list[OrderLineInput] = strawberry.field(description=f"1 to {MAX_LINES} lines, each product once.")
    idempotency_key: str | None = strawberry.field(
        default=None,
        description=f"Client-chosen key (1–{MAX_IDEMPOTENCY_KEY_LENGTH} characters), unique per customer: "
        "retrying with it returns the first order and changes nothing.",
    )

    def to_input(self) -> orders_service.OrderPlace:
        items = [
            {"productId": decode_typed_id(line.product_id, "Product"), "quantity": line.quantity} for line in self.items
        ]
        return orders_service.OrderPlace.from_data({"items": items, "idempotencyKey": self.idempotency_key})


@strawberry.input(description="The order to cancel.")
class OrderCancelInput:
    order_id: strawberry.ID = strawberry.field(description="Global id of the order.")

    def to_input(self) -> orders_service.OrderCancel:
        return validated(orders_service.OrderCancel, {"orderId": decode_typed_id(self.order_id, "Order")})


@strawberry.input(description="An order and the status to move it to.")
class OrderStatusUpdateInput:
    order_id: strawberry.ID = strawberry.field(description="Global id of the order.")
    status: OrderStatus = strawberry.field(  # type: ignore[valid-type]
        description="The next status; only the transitions of `OrderStatus` are allowed."
    )

    def to_input(self) -> orders_service.OrderStatusUpdate:
        order_id = decode_typed_id(self.order_id, "Order")
        return validated(orders_service.OrderStatusUpdate, {"orderId": order_id, "status": self.status})
