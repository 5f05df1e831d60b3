"""Root subscription fields of orders: follow an order's status, as its customer or as staff.

The events are the committed outbox events of `orderStatusUpdate` and `orderCancel` (schema/events.py),
never an uncommitted change. A subscription holds no database connection while it waits: it reads
once to check who may follow the order, and once per event for the fields the client selected.
"""

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry

from domains.common.base import utcnow
from domains.common.exceptions import ForbiddenError, UnauthenticatedError
from domains.common.ids import decode_typed_id, encode_global_id
from schema import metrics
from schema.context import Info
from schema.events import Event, EventStream
from schema.orders.payloads import OrderStatusChange
from schema.permissions import requires

ORDER_STATUS_CHANGED = "OrderStatusChanged"
NOT_YOURS = "Only the order's customer and staff can follow it."
SIGNED_OUT = "The access token that authorised this subscription expired; sign in again and subscribe anew."


@strawberry.type
class OrdersSubscription:
    @strawberry.subscription(
        description="Each status change of one order (`orderStatusUpdate`, `orderCancel`), once committed. "
        "The order's customer and staff only (others: FORBIDDEN). It ends, with UNAUTHENTICATED, when the "
        "access token given in `connection_init` expires, and with RATE_LIMITED if the client falls too far "
        "behind its events.",
        extensions=requires(),
    )
    async def order_status_changed(
        self,
        info: Info,
        order_id: Annotated[strawberry.ID, strawberry.argument(description="Global id of the order to follow.")],
    ) -> AsyncGenerator[OrderStatusChange, None]:
        pk = decode_typed_id(order_id, "Order")
        if await info.context.loaders.orders.order_by_id.load(pk) is None:
            raise ForbiddenError(NOT_YOURS)
        await info.context.db.release()
        return _changes(info, pk)


async def _changes(info: Info, pk: int) -> AsyncGenerator[OrderStatusChange, None]:
    order_id = encode_global_id("Order", pk)
    loaders = info.context.loaders.orders
    async with info.context.events.subscribe(ORDER_STATUS_CHANGED, where={"orderId": order_id}) as events:
        metrics.SUBSCRIPTIONS_ACTIVE.inc()
        try:
            while True:
                event = await _next(events, info.context.principal.expires_at)
                loaders.order_by_id.clear(pk)
                loaders.items_by_order_id.clear(pk)
                yield OrderStatusChange.from_event(event.payload, pk)
                # The event's fields are resolved and sent: give the connection back until the next one.
                await info.context.db.release()
        finally:
            metrics.SUBSCRIPTIONS_ACTIVE.dec()


async def _next(events: EventStream, expires_at: datetime | None) -> Event:
    if expires_at is None:
        return await events.next()
    try:
        async with asyncio.timeout(max(0.0, (expires_at - utcnow()).total_seconds())):
            return await events.next()
    except TimeoutError:
        raise UnauthenticatedError(SIGNED_OUT) from None
