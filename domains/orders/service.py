"""Use cases of orders: placing one (stock taken atomically, prices snapshotted, idempotent), and its status."""

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.base import utcnow
from domains.common.exceptions import ErrorCode, FieldProblem, InvalidInputError, UnauthenticatedError
from domains.common.ids import encode_global_id
from domains.common.outbox import record_event
from domains.common.principal import Principal
from domains.orders import repository as orders_repository
from domains.orders.exceptions import IdempotencyKeyReusedError, InvalidTransitionError, OrderNotFoundError
from domains.orders.models import TRANSITIONS, Order, OrderItem, OrderStatus, OrderView

MAX_LINES = 50
MAX_QUANTITY = 999
MAX_IDEMPOTENCY_KEY_LENGTH = 100
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: int
    quantity: int


def _line_problems(lines: Sequence[OrderLine], idempotency_key: str | None) -> list[FieldProblem]:
    items = ("input", "items")
    if not lines:
        return [FieldProblem(ErrorCode.REQUIRED, "Order at least one item.", items)]
    if len(lines) > MAX_LINES:
        return [FieldProblem(ErrorCode.TOO_LONG, f"An order holds at most {MAX_LINES} lines.", items)]
    problems, seen = [], set()
    for index, line in enumerate(lines):
        if not 1 <= line.quantity <= MAX_QUANTITY:
            message = f"Order from 1 to {MAX_QUANTITY} units."
            problems.append(FieldProblem(ErrorCode.INVALID, message, (*items, str(index), "quantity")))
        if line.product_id in seen:
            # Refused, not merged: one line per product keeps what the client sees equal to what is stored.
            message = "This product is already on another line; put the whole quantity on one line."
            problems.append(FieldProblem(ErrorCode.DUPLICATE, message, (*items, str(index), "productId")))
        seen.add(line.product_id)
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        message = f"Use 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters."
        problems.append(FieldProblem(ErrorCode.INVALID, message, ("input", "idempotencyKey")))
    return problems


def _digest(lines: Sequence[OrderLine]) -> str:
    canonical = sorted((line.product_id, line.quantity) for line in lines)
    return hashlib.sha256(orjson.dumps(canonical)).hexdigest()


def _replayed(order: Order, digest: str) -> Order:
    if order.request_digest != digest:
        raise IdempotencyKeyReusedError
    return order


async def place_order(
    session: AsyncSession, principal: Principal, *, lines: Sequence[OrderLine], idempotency_key: str | None
) -> tuple[Order, bool]:
    """Place an order; return it and whether it is new (False: a retry with the same key got the first one)."""
    if principal.user_id is None:
        raise UnauthenticatedError("Sign in to order.")
    problems = _line_problems(lines, idempotency_key)
    if problems:
        raise InvalidInputError(problems)
    digest = _digest(lines)
    if idempotency_key is not None:
        existing = await orders_repository.get_order_by_idempotency_key(session, principal.user_id, idempotency_key)
        if existing is not None:
            return _replayed(existing, digest), False
    try:
        # A savepoint: if a concurrent call with the same key commits first, our insert fails here,
        # the stock we took goes back, and that call's order is the answer.
        async with session.begin_nested():
            order = await _take_stock_and_insert(session, principal.user_id, lines, idempotency_key, digest)
    except IntegrityError:
        if idempotency_key is None:
            raise
        existing = await orders_repository.get_order_by_idempotency_key(session, principal.user_id, idempotency_key)
        if existing is None:
            raise
        return _replayed(existing, digest), False
    record_event(
        session,
        "OrderPlaced",
        {"orderId": encode_global_id("Order", order.id), "total": str(order.total_amount), "currency": order.currency},
    )
    return order, True


async def _take_stock_and_insert(
    session: AsyncSession, customer_id: int, lines: Sequence[OrderLine], key: str | None, digest: str
) -> Order:
    # Rows are locked in product id order by every writer, so overlapping orders cannot deadlock.
    priced: dict[int, tuple[Decimal, str]] = {}
    problems: dict[int, FieldProblem] = {}
    for index, line in sorted(enumerate(lines), key=lambda pair: pair[1].product_id):
        price = await orders_repository.take_stock(session, line.product_id, line.quantity)
        if price is not None:
            priced[index] = price
        elif await orders_repository.is_for_sale(session, line.product_id):
            field = ("input", "items", str(index), "quantity")
            # The message names no count: stock levels are for staff only.
            problems[index] = FieldProblem(ErrorCode.OUT_OF_STOCK, "Not enough units in stock.", field)
        else:
            field = ("input", "items", str(index), "productId")
            problems[index] = FieldProblem(ErrorCode.NOT_FOUND, "No such product for sale.", field)
    if problems:
        raise InvalidInputError([problems[index] for index in sorted(problems)])
    currencies = {currency for _, currency in priced.values()}
    if len(currencies) > 1:
        raise InvalidInputError([FieldProblem(ErrorCode.INVALID, "Order items of one currency.", ("input", "items"))])
    items = [
        OrderItem(
            product_id=line.product_id,
            quantity=line.quantity,
            unit_price=priced[index][0],
            line_total=(priced[index][0] * line.quantity).quantize(CENT),
        )
        for index, line in enumerate(lines)
    ]
    order = Order(
        number=f"SF-{utcnow():%y%m%d}-{secrets.token_hex(5).upper()}",
        customer_id=customer_id,
        status=OrderStatus.PENDING.value,
        total_amount=sum((item.line_total for item in items), Decimal("0.00")),
        currency=currencies.pop(),
        idempotency_key=key,
        request_digest=digest,
    )
    session.add(order)
    await session.flush()
    for item in items:
        item.order_id = order.id
    session.add_all(items)
    await session.flush()
    return order


async def change_order_status(
    session: AsyncSession, principal: Principal, *, order_id: int, status: OrderStatus, field: tuple[str, ...]
) -> OrderView:
    """Move an order along its state machine; cancelling returns its stock, exactly once."""
    order = await orders_repository.get_order_for_change(session, principal, order_id)
    if order is None:
        raise OrderNotFoundError
    current = OrderStatus(order.status)
    if status not in TRANSITIONS[current]:
        raise InvalidTransitionError(current, status, field)
    # Conditional on the status we read: of two concurrent changes only one matches, so a
    # cancellation returns stock once even when two run at the same time.
    if not await orders_repository.set_order_status(session, order_id, expected=current, status=status):
        latest = await orders_repository.get_order_for_change(session, principal, order_id)
        raise InvalidTransitionError(OrderStatus(latest.status) if latest else current, status, field)
    if status is OrderStatus.CANCELLED:
        await orders_repository.return_stock(session, order_id)
    changed = await orders_repository.get_order_for_change(session, principal, order_id)
    assert changed is not None  # noqa: S101 - the row was just updated in this transaction
    record_event(
        session,
        "OrderStatusChanged",
        {
            "orderId": encode_global_id("Order", order_id),
            "previousStatus": current.value,
            "status": status.value,
            "changedAt": changed.updated_at.isoformat(),
        },
    )
    return changed


async def cancel_order(session: AsyncSession, principal: Principal, *, order_id: int) -> OrderView:
    """Cancel an order of the principal's (staff: any order) while it is PENDING or PAID."""
    return await change_order_status(
        session, principal, order_id=order_id, status=OrderStatus.CANCELLED, field=("input", "orderId")
    )
