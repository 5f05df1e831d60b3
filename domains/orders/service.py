"""Use cases of orders: placing one (stock taken atomically, prices snapshotted, idempotent), and its status."""

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Self

import orjson
from pydantic import Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.base import utcnow
from domains.common.exceptions import ErrorCode, FieldProblem, InvalidInputError
from domains.common.ids import encode_global_id
from domains.common.outbox import record_event
from domains.common.principal import Principal, Role, require_role, require_system, require_user
from domains.common.validation import FrozenInput, validated
from domains.orders import repository as orders_repository
from domains.orders.exceptions import IdempotencyKeyReusedError, InvalidTransitionError, OrderNotFoundError
from domains.orders.models import TRANSITIONS, Order, OrderItem, OrderStatus, OrderView

MAX_LINES = 50
MAX_QUANTITY = 999
MAX_IDEMPOTENCY_KEY_LENGTH = 100
CENT = Decimal("0.01")
DUPLICATE_LINE = "This product is already on another line; put the whole quantity on one line."


class OrderLine(FrozenInput):
    product_id: int
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY, description=f"Order from 1 to {MAX_QUANTITY} units.")]


class OrderPlace(FrozenInput):
    """An order to place: 1 to MAX_LINES lines, each product on one line, and an optional idempotency key."""

    # A list, not a tuple: pydantic counts a list's lines as sent (a tuple's as validated, so two bad
    # lines would also read as "no lines"), and refuses a list that is too long before judging its lines.
    items: Annotated[list[OrderLine], Field(min_length=1, max_length=MAX_LINES)]
    # A pattern, not min/max_length: a key out of range is INVALID (SPEC's code for it), not TOO_LONG.
    idempotency_key: Annotated[
        str | None,
        Field(
            pattern=rf"(?s)^.{{1,{MAX_IDEMPOTENCY_KEY_LENGTH}}}$",
            description=f"Use 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters.",
        ),
    ] = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """Validate an order to place; raise InvalidInputError with every problem, line by line."""
        duplicates = _duplicate_lines(_raw_product_ids(data.get("items")))
        try:
            order = validated(cls, data)
        except InvalidInputError as exc:
            # No lines, or too many, is reported alone: the lines are not judged then.
            if any(problem.field == ("input", "items") for problem in exc.problems):
                raise
            raise InvalidInputError(_line_by_line([*exc.problems, *duplicates])) from exc
        if duplicates:
            raise InvalidInputError(duplicates)
        return order


class OrderStatusUpdate(FrozenInput):
    """An order and the status to move it to."""

    order_id: int
    status: OrderStatus


class OrderCancel(FrozenInput):
    """The order to cancel."""

    order_id: int


def _duplicate_lines(product_ids: Sequence[object]) -> list[FieldProblem]:
    # Refused, not merged: one line per product keeps what the client sees equal to what is stored.
    problems, seen = [], set()
    for index, product_id in enumerate(product_ids):
        if product_id is not None and product_id in seen:
            field = ("input", "items", str(index), "productId")
            problems.append(FieldProblem(ErrorCode.DUPLICATE, DUPLICATE_LINE, field))
        seen.add(product_id)
    return problems


def _raw_product_ids(items: object) -> list[object]:
    # Read before validation, so duplicates are reported together with the lines' other problems.
    if not isinstance(items, Sequence) or isinstance(items, str):
        return []
    return [line.get("productId", line.get("product_id")) if isinstance(line, Mapping) else None for line in items]


def _line_by_line(problems: Sequence[FieldProblem]) -> list[FieldProblem]:
    # The lines' problems in line order (a line's quantity before its productId, as found), then the key's.
    def position(problem: FieldProblem) -> tuple[bool, int]:
        field = problem.field or ()
        on_items = field[1:2] == ("items",)
        return not on_items, int(field[2]) if on_items and len(field) > 2 else -1

    return sorted(problems, key=position)


def _digest(lines: Sequence[OrderLine]) -> str:
    canonical = sorted((line.product_id, line.quantity) for line in lines)
    return hashlib.sha256(orjson.dumps(canonical)).hexdigest()


def _replayed(order: Order, digest: str) -> Order:
    if order.request_digest != digest:
        raise IdempotencyKeyReusedError
    return order


async def place_order(session: AsyncSession, principal: Principal, *, input: OrderPlace) -> Order:
    """Place an order and return it; a retry with the same idempotency key returns the first one."""
    customer_id = require_user(principal)
    # Checked here too, whoever built the input: `from_data` only reports it with the other problems.
    duplicates = _duplicate_lines([line.product_id for line in input.items])
    if duplicates:
        raise InvalidInputError(duplicates)
    lines, key = input.items, input.idempotency_key
    digest = _digest(lines)
    if key is not None:
        existing = await orders_repository.get_order_by_idempotency_key(session, customer_id, key)
        if existing is not None:
            return _replayed(existing, digest)
    try:
        # A savepoint: if a concurrent call with the same key commits first, our insert fails here,
        # the stock we took goes back, and that call's order is the answer.
        async with session.begin_nested():
            order = await _take_stock_and_insert(session, customer_id, lines, key, digest)
    except IntegrityError:
        if key is None:
            raise
        existing = await orders_repository.get_order_by_idempotency_key(session, customer_id, key)
        if existing is None:
            raise
        return _replayed(existing, digest)
    record_event(
        session,
        "OrderPlaced",
        {"orderId": encode_global_id("Order", order.id), "total": str(order.total_amount), "currency": order.currency},
    )
    return order


async def _take_stock(session: AsyncSession, lines: Sequence[OrderLine]) -> dict[int, tuple[Decimal, str]]:
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
    return priced


async def _take_stock_and_insert(
    session: AsyncSession, customer_id: int, lines: Sequence[OrderLine], key: str | None, digest: str
) -> Order:
    priced = await _take_stock(session, lines)
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


async def change_order_status(session: AsyncSession, principal: Principal, *, input: OrderStatusUpdate) -> OrderView:
    """Move any order along its state machine; staff only (customers cancel through `cancel_order`)."""
    require_role(principal, Role.STAFF)
    return await _move_order(session, principal, input.order_id, input.status, ("input", "status"))


async def cancel_order(session: AsyncSession, principal: Principal, *, input: OrderCancel) -> OrderView:
    """Cancel an order of the principal's (staff: any order) while it is PENDING or PAID."""
    require_user(principal)
    # Ownership is the repository's visibility rule: another customer's order is NOT_FOUND.
    return await _move_order(session, principal, input.order_id, OrderStatus.CANCELLED, ("input", "orderId"))


async def _move_order(
    session: AsyncSession, principal: Principal, order_id: int, status: OrderStatus, field: tuple[str, ...]
) -> OrderView:
    # Cancelling returns the order's stock, exactly once.
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


async def forget_idempotency_keys(session: AsyncSession, principal: Principal, *, placed_before: datetime) -> int:
    """Forget the idempotency keys of orders placed before a time (the system's maintenance); return how many.

    A retry with such a key after that places a new order: keys protect retries, not history.
    """
    require_system(principal)
    return await orders_repository.clear_idempotency_keys_before(session, placed_before)
