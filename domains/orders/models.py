from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from domains.common.base import Base, TimestampMixin
from domains.common.views import view


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


class Order(TimestampMixin, Base):
    __tablename__ = "order"
    __table_args__ = (
        CheckConstraint(
            "status IN ('PENDING', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED')",
            name="status_valid",
        ),
        UniqueConstraint("customer_id", "idempotency_key"),
        Index(None, "customer_id", "created_at", "id"),
        Index(None, "status", "created_at", "id"),
        Index(None, "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.PENDING.value)
    total_amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    # A digest of the ordered lines, to tell a retry from a reuse of the key for other items.
    request_digest: Mapped[str | None] = mapped_column(String(64))


class OrderItem(Base):
    __tablename__ = "order_item"
    __table_args__ = (
        CheckConstraint("quantity >= 1 AND quantity <= 999", name="quantity_range"),
        UniqueConstraint("order_id", "product_id"),
        Index(None, "product_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    line_total: Mapped[Decimal] = mapped_column(Numeric(14, 2))


# The allowed status changes: PENDING → PAID → SHIPPED → DELIVERED, and PENDING or PAID → CANCELLED.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


@view
class OrderView:
    id: int
    number: str
    customer_id: int
    status: str
    total_amount: Decimal
    currency: str
    created_at: datetime
    updated_at: datetime


@view
class OrderItemView:
    id: int
    order_id: int
    product_id: int
    quantity: int
    unit_price: Decimal
    line_total: Decimal
    currency: str  # the order's


ORDER_VIEW_COLUMNS: list[Any] = [Order.__table__.c[f.name] for f in fields(OrderView)]
ORDER_ITEM_VIEW_COLUMNS: list[Any] = [
    OrderItem.__table__.c[f.name] for f in fields(OrderItemView) if f.name in OrderItem.__table__.c
]


def view_of_order(order: Order) -> OrderView:
    """Build the read view of an order a write just made."""
    return OrderView(*(getattr(order, f.name) for f in fields(OrderView)))
