"""GraphQL types of orders."""

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Self

import strawberry

from domains.orders import models
from schema.cache_control import PRIVATE
from schema.context import Info
from schema.enums import described_enum
from schema.loaders import AwaitableOrValue
from schema.orders.loaders import ITEM_PRODUCT, ORDER_CUSTOMER, ORDER_ITEMS
from schema.products import types as products_types
from schema.relay.node import Node
from schema.scalars import Money
from schema.users import types as users_types

if TYPE_CHECKING:
    from schema.products.types import Product
    from schema.users.types import User

ProductRef = Annotated["Product", strawberry.lazy("schema.products.types")]
UserRef = Annotated["User", strawberry.lazy("schema.users.types")]

OrderStatus = described_enum(
    models.OrderStatus,
    name="OrderStatus",
    description="Where an order is: PENDING → PAID → SHIPPED → DELIVERED; PENDING or PAID → CANCELLED.",
    values={
        models.OrderStatus.PENDING: "Placed; stock is reserved; awaiting payment.",
        models.OrderStatus.PAID: "Paid; awaiting shipment.",
        models.OrderStatus.SHIPPED: "On its way.",
        models.OrderStatus.DELIVERED: "Delivered; final.",
        models.OrderStatus.CANCELLED: "Cancelled before shipping; its stock was returned. Final.",
    },
)


# Each relation field's resolver (schema/relations.py); a type defined later or elsewhere is named in a lambda.
_ITEM_PRODUCT = ITEM_PRODUCT.resolver(
    key=lambda item: item.product_id, convert=lambda row: products_types.Product.from_optional(row)
)
_ORDER_ITEMS = ORDER_ITEMS.resolver(key=lambda order: order.pk, convert=lambda row: OrderItem.from_model(row))
_ORDER_CUSTOMER = ORDER_CUSTOMER.resolver(
    key=lambda order: order.customer_id, convert=lambda row: users_types.User.from_required(row)
)


@strawberry.type(
    description="One line of an order, priced when the order was placed. Visible as its order.", directives=[PRIVATE]
)
class OrderItem(Node):
    NODE_TYPE = "OrderItem"

    pk: strawberry.Private[int]
    product_id: strawberry.Private[int]
    quantity: int = strawberry.field(description="Units ordered, 1–999.")
    unit_price: Money = strawberry.field(description="Price of one unit when the order was placed.")
    line_total: Money = strawberry.field(description="`unitPrice × quantity`.")

    @classmethod
    def from_model(cls, row: models.OrderItemView) -> Self:
        return cls(
            id=cls.global_id(row.id),
            pk=row.id,
            product_id=row.product_id,
            quantity=row.quantity,
            unit_price=Money(amount=row.unit_price, currency=row.currency),
            line_total=Money(amount=row.line_total, currency=row.currency),
        )

    @classmethod
    async def resolve_nodes(cls, info: Info, pks: Sequence[int]) -> list[Self | None]:
        rows = await info.context.loaders.orders.order_item_by_id.load_many(pks)
        return [cls.from_optional(row) for row in rows]

    @strawberry.field(
        description="The product ordered; null if it is no longer visible to you (e.g. unpublished).",
        graphql_type=ProductRef | None,
        metadata=_ITEM_PRODUCT.metadata,
    )
    def product(self, info: Info) -> AwaitableOrValue["Product | None"] | None:
        return _ITEM_PRODUCT.resolve(info.context.loaders, self)


@strawberry.type(description="A customer's order. Visible to that customer and to staff.", directives=[PRIVATE])
class Order(Node):
    NODE_TYPE = "Order"

    pk: strawberry.Private[int]
    customer_id: strawberry.Private[int]
    number: str = strawberry.field(description="Human-friendly order number, unique.")
    status: OrderStatus = strawberry.field(description="Where the order is in its life.")  # type: ignore[valid-type]
    total: Money = strawberry.field(description="Sum of the line totals.")
    created_at: datetime = strawberry.field(description="When the order was placed.")
    updated_at: datetime = strawberry.field(description="When the order last changed.")

    @classmethod
    def from_model(cls, row: models.OrderView) -> Self:
        return cls(
            id=cls.global_id(row.id),
            pk=row.id,
            customer_id=row.customer_id,
            number=row.number,
            status=models.OrderStatus(row.status),
            total=Money(amount=row.total_amount, currency=row.currency),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @classmethod
    async def resolve_nodes(cls, info: Info, pks: Sequence[int]) -> list[Self | None]:
        rows = await info.context.loaders.orders.order_by_id.load_many(pks)
        return [cls.from_optional(row) for row in rows]

    @strawberry.field(
        description="The lines of the order, at most 50.", graphql_type=list[OrderItem], metadata=_ORDER_ITEMS.metadata
    )
    def items(self, info: Info) -> AwaitableOrValue[list[OrderItem]]:
        return _ORDER_ITEMS.resolve(info.context.loaders, self)

    @strawberry.field(description="Who placed the order.", graphql_type=UserRef, metadata=_ORDER_CUSTOMER.metadata)
    def customer(self, info: Info) -> AwaitableOrValue["User | None"] | None:
        return _ORDER_CUSTOMER.resolve(info.context.loaders, self)
