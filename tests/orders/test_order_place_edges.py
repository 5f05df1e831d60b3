"""orderPlace at its edges: the largest accepted order, its event, its number, replays and mixed currencies.

Written to kill the mutants `make mutation` found surviving in the order service's write path.
"""

import re

from httpx import AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domains.orders import models as orders_models
from domains.orders.service import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_LINES, MAX_QUANTITY
from domains.products import models as products_models
from tests import factories
from tests.auth import Account
from tests.orders.conftest import lines, place

ORDER_NUMBER = re.compile(r"SF-\d{6}-[0-9A-F]{10}")


async def _stock(session: AsyncSession, product_id: int) -> int:
    stmt = select(products_models.Product.stock).where(products_models.Product.id == product_id)
    return int((await session.execute(stmt)).scalar_one())


async def test_order_place_records_its_total_and_currency_and_numbers_the_order(
    client: AsyncClient, db_session: AsyncSession, customer: Account
) -> None:
    # given
    tea = await factories.create_product(db_session, price="4.50")
    pot = await factories.create_product(db_session, price="10.00")
    await db_session.commit()

    # when
    body = await place(client, customer, lines((tea.id, 2), (pot.id, 1)))

    # then
    order = body["data"]["orderPlace"]["order"]
    assert ORDER_NUMBER.fullmatch(order["number"]), order["number"]
    assert order["total"] == {"amount": "19.00", "currency": "USD"}
    assert await factories.recorded_events(db_session) == [
        ("OrderPlaced", {"orderId": order["id"], "total": "19.00", "currency": "USD"})
    ]


async def test_order_place_accepts_the_most_lines_the_largest_quantity_and_keys_of_both_extreme_lengths(
    client: AsyncClient, db_session: AsyncSession, customer: Account
) -> None:
    # given
    products = [await factories.create_product(db_session, stock=MAX_QUANTITY) for _ in range(MAX_LINES)]
    await db_session.commit()
    largest = lines(*((product.id, MAX_QUANTITY if n == 0 else 1) for n, product in enumerate(products)))

    # when
    full = await place(client, customer, largest, key="k")
    longest_key = await place(client, customer, lines((products[1].id, 1)), key="k" * MAX_IDEMPOTENCY_KEY_LENGTH)

    # then
    for body in (full, longest_key):
        assert body["data"]["orderPlace"]["userErrors"] == []
    assert len(full["data"]["orderPlace"]["order"]["items"]) == MAX_LINES
    assert await _stock(db_session, products[0].id) == 0


async def test_order_place_retry_replays_the_order_after_its_stock_is_gone(
    client: AsyncClient, db_session: AsyncSession, customer: Account
) -> None:
    # given: an order that took the last units
    product = await factories.create_product(db_session, stock=2)
    await db_session.commit()
    first = await place(client, customer, lines((product.id, 2)), key="cart-7")

    # when: the client retries it
    retry = await place(client, customer, lines((product.id, 2)), key="cart-7")

    # then: the same order, not OUT_OF_STOCK
    assert retry["data"]["orderPlace"] == first["data"]["orderPlace"]
    assert await _stock(db_session, product.id) == 0


async def test_order_place_refuses_items_of_two_currencies(
    client: AsyncClient, db_session: AsyncSession, customer: Account
) -> None:
    # given
    dollars = await factories.create_product(db_session, stock=5)
    euros = await factories.create_product(db_session, stock=5)
    await db_session.execute(
        update(products_models.Product).where(products_models.Product.id == euros.id).values(currency="EUR")
    )
    await db_session.commit()

    # when
    body = await place(client, customer, lines((dollars.id, 1), (euros.id, 1)))

    # then: refused as a whole, and the stock taken for it given back
    errors = body["data"]["orderPlace"]["userErrors"]
    assert [(error["field"], error["code"]) for error in errors] == [(["input", "items"], "INVALID")]
    assert (await _stock(db_session, dollars.id), await _stock(db_session, euros.id)) == (5, 5)
    assert await db_session.scalar(select(func.count()).select_from(orders_models.Order)) == 0
