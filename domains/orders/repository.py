"""SQL for orders. Who may see an order (its customer and staff) is decided in these statements."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.base import utcnow
from domains.common.keyset import (
    Ordering,
    Page,
    PageRequest,
    SortKey,
    attribute_key,
    keyset_select,
    keyset_window,
    page_parameters,
    to_page,
)
from domains.common.principal import Principal
from domains.orders.models import (
    ORDER_ITEM_VIEW_COLUMNS,
    ORDER_VIEW_COLUMNS,
    Order,
    OrderItem,
    OrderItemView,
    OrderStatus,
    OrderView,
)
from domains.products.models import Product

ORDER_ORDERING = Ordering(SortKey("CREATED_AT", Order.created_at, "datetime"), descending=True)


@dataclass(frozen=True, slots=True)
class OrderFilter:
    status: OrderStatus | None = None
    customer_id: int | None = None


def _readable_orders(principal: Principal) -> ColumnElement[bool]:
    # Staff see every order; a customer (or their API key) only their own.
    if principal.is_staff:
        return true()
    if principal.user_id is None:
        return false()
    return Order.customer_id == principal.user_id


def _orders(principal: Principal) -> Select[Any]:
    return select(*ORDER_VIEW_COLUMNS).where(_readable_orders(principal))


async def get_orders_by_ids(session: AsyncSession, principal: Principal, ids: Sequence[int]) -> list[OrderView]:
    """Get the orders among these ids that the principal may see."""
    return [OrderView(*row) for row in await session.execute(_orders(principal).where(Order.id.in_(ids)))]


def _filtered(principal: Principal, where: OrderFilter) -> Select[Any]:
    stmt = _orders(principal)
    if where.status is not None:
        stmt = stmt.where(Order.status == where.status.value)
    if where.customer_id is not None:
        stmt = stmt.where(Order.customer_id == where.customer_id)
    return stmt


async def list_orders(
    session: AsyncSession, principal: Principal, where: OrderFilter, page: PageRequest
) -> Page[OrderView]:
    """List one keyset page of the visible orders matching a filter, newest first."""
    stmt = keyset_select(_filtered(principal, where), ORDER_ORDERING, Order.id, page)
    rows = [OrderView(*row) for row in await session.execute(stmt)]
    return to_page(rows, ORDER_ORDERING, page, attribute_key(ORDER_ORDERING))


async def count_orders(session: AsyncSession, principal: Principal, where: OrderFilter) -> int:
    """Count the visible orders matching a filter."""
    stmt = select(func.count()).select_from(_filtered(principal, where).subquery())
    return int((await session.execute(stmt)).scalar_one())


async def list_orders_by_customer_ids(
    session: AsyncSession, principal: Principal, customer_ids: Sequence[int], ordering: Ordering, page: PageRequest
) -> dict[int, list[OrderView]]:
    """List one page (plus a look-ahead row) of each customer's visible orders, in one statement."""
    stmt = _orders(principal).where(Order.customer_id.in_(customer_ids))
    inner, on_page, order = keyset_window(stmt, Order.customer_id, ordering, Order.id, page)
    paged = select(*(inner.c[column.key] for column in ORDER_VIEW_COLUMNS)).where(on_page).order_by(*order)
    pages: dict[int, list[OrderView]] = defaultdict(list)
    for row in await session.execute(paged, page_parameters(page)):
        view = OrderView(*row)
        pages[view.customer_id].append(view)
    return pages


async def count_orders_by_customer_ids(
    session: AsyncSession, principal: Principal, customer_ids: Sequence[int]
) -> dict[int, int]:
    """Count each customer's visible orders."""
    stmt = (
        _orders(principal)
        .with_only_columns(Order.customer_id, func.count())
        .where(Order.customer_id.in_(customer_ids))
        .group_by(Order.customer_id)
    )
    return {customer_id: int(count) for customer_id, count in (await session.execute(stmt)).all()}


def _items() -> Select[Any]:
    return select(*ORDER_ITEM_VIEW_COLUMNS, Order.currency).join(Order, Order.id == OrderItem.order_id)


async def get_items_by_order_ids(session: AsyncSession, order_ids: Sequence[int]) -> dict[int, list[OrderItemView]]:
    """Get the lines of each order (the caller could already see the orders), in product order."""
    stmt = _items().where(OrderItem.order_id.in_(order_ids)).order_by(OrderItem.order_id, OrderItem.id)
    lines: dict[int, list[OrderItemView]] = defaultdict(list)
    for row in await session.execute(stmt):
        item = OrderItemView(*row)
        lines[item.order_id].append(item)
    return lines


async def get_order_items_by_ids(
    session: AsyncSession, principal: Principal, ids: Sequence[int]
) -> list[OrderItemView]:
    """Get the order lines among these ids whose orders the principal may see."""
    stmt = _items().where(OrderItem.id.in_(ids), _readable_orders(principal))
    return [OrderItemView(*row) for row in await session.execute(stmt)]


async def get_order_by_idempotency_key(session: AsyncSession, customer_id: int, key: str) -> Order | None:
    """Get a customer's order placed with this idempotency key."""
    stmt = select(Order).where(Order.customer_id == customer_id, Order.idempotency_key == key)
    return (await session.execute(stmt)).scalar_one_or_none()


async def take_stock(session: AsyncSession, product_id: int, quantity: int) -> tuple[Decimal, str] | None:
    """Take units of a published product if enough are in stock, atomically; return its price and currency."""
    stmt = (
        update(Product)
        .where(Product.id == product_id, Product.is_published.is_(True), Product.stock >= quantity)
        .values(stock=Product.stock - quantity)
        .returning(Product.price, Product.currency)
    )
    row = (await session.execute(stmt)).one_or_none()
    return (row.price, row.currency) if row is not None else None


async def is_for_sale(session: AsyncSession, product_id: int) -> bool:
    """Tell whether a product exists and is published."""
    stmt = select(Product.id).where(Product.id == product_id, Product.is_published.is_(True))
    return (await session.execute(stmt)).first() is not None


async def return_stock(session: AsyncSession, order_id: int) -> None:
    """Put an order's units back in stock, in product id order (the order every writer locks rows in)."""
    lines = (
        await session.execute(
            select(OrderItem.product_id, OrderItem.quantity)
            .where(OrderItem.order_id == order_id)
            .order_by(OrderItem.product_id)
        )
    ).all()
    for product_id, quantity in lines:
        await session.execute(update(Product).where(Product.id == product_id).values(stock=Product.stock + quantity))


async def get_order_for_change(session: AsyncSession, principal: Principal, order_id: int) -> OrderView | None:
    """Get an order the principal may see, to change it."""
    row = (await session.execute(_orders(principal).where(Order.id == order_id))).one_or_none()
    return OrderView(*row) if row is not None else None


async def set_order_status(session: AsyncSession, order_id: int, *, expected: OrderStatus, status: OrderStatus) -> bool:
    """Move an order from `expected` to `status`; False when it is no longer in `expected` (a concurrent change)."""
    stmt = (
        update(Order)
        .where(Order.id == order_id, Order.status == expected.value)
        .values(status=status.value, updated_at=utcnow())
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def clear_idempotency_keys_before(session: AsyncSession, moment: datetime) -> int:
    """Forget the idempotency keys of orders placed before a time; return how many."""
    result: Any = await session.execute(
        update(Order)
        .where(Order.created_at < moment, Order.idempotency_key.is_not(None))
        .values(idempotency_key=None, request_digest=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)
