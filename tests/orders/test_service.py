"""The orders service's own rules, called directly as a worker or a script would: no HTTP, no GraphQL fields."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.exceptions import DomainError, ErrorCode, ForbiddenError, InvalidInputError, UnauthenticatedError
from domains.common.principal import ANONYMOUS, Principal, Role
from domains.orders import models as orders_models
from domains.orders import repository as orders_repository
from domains.orders import service as orders_service
from domains.orders.exceptions import OrderNotFoundError
from domains.products import models as products_models
from domains.users import models as users_models
from tests import factories


def _principal(user: users_models.User) -> Principal:
    return Principal(user_id=user.id, roles=frozenset(Role(role) for role in user.roles))


def _update(order: orders_models.Order, status: orders_models.OrderStatus) -> orders_service.OrderStatusUpdate:
    return orders_service.OrderStatusUpdate(order_id=order.id, status=status)


async def _status(session: AsyncSession, order_id: int) -> str:
    return str(await session.scalar(select(orders_models.Order.status).where(orders_models.Order.id == order_id)))


async def _stock(session: AsyncSession, product_id: int) -> int:
    stmt = select(products_models.Product.stock).where(products_models.Product.id == product_id)
    return int((await session.execute(stmt)).scalar_one())


async def _order_count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(orders_models.Order))).scalar_one())


@pytest.mark.parametrize(
    ("current", "wanted"),
    [("PENDING", orders_models.OrderStatus.PAID), ("PAID", orders_models.OrderStatus.SHIPPED)],
)
async def test_change_order_status_refuses_a_customer_even_on_their_own_order(
    db_session: AsyncSession, current: str, wanted: orders_models.OrderStatus
) -> None:
    # given: a customer's own order, one step before `wanted`
    customer = await factories.create_user(db_session)
    product = await factories.create_product(db_session)
    order = await factories.create_order(db_session, customer=customer, product=product, status=current)
    await db_session.commit()

    # when
    with pytest.raises(ForbiddenError) as refused:
        await orders_service.change_order_status(db_session, _principal(customer), input=_update(order, wanted))
    await db_session.commit()  # whatever the service wrote before refusing would be kept now

    # then: refused as FORBIDDEN, and nothing was written
    assert refused.value.code == "FORBIDDEN"
    assert await _status(db_session, order.id) == current
    assert await factories.recorded_events(db_session) == []


async def test_change_order_status_refuses_an_anonymous_caller(db_session: AsyncSession) -> None:
    # given
    customer = await factories.create_user(db_session)
    product = await factories.create_product(db_session)
    order = await factories.create_order(db_session, customer=customer, product=product)
    await db_session.commit()

    # when
    with pytest.raises(UnauthenticatedError) as refused:
        await orders_service.change_order_status(
            db_session, ANONYMOUS, input=_update(order, orders_models.OrderStatus.PAID)
        )
    await db_session.commit()

    # then
    assert refused.value.code == "UNAUTHENTICATED"
    assert await _status(db_session, order.id) == "PENDING"
    assert await factories.recorded_events(db_session) == []


async def test_change_order_status_lets_staff_move_an_order_to_delivered(db_session: AsyncSession) -> None:
    # given
    customer = await factories.create_user(db_session)
    staff = await factories.create_user(db_session, roles=("STAFF",))
    product = await factories.create_product(db_session)
    order = await factories.create_order(db_session, customer=customer, product=product)
    await db_session.commit()
    steps = [orders_models.OrderStatus.PAID, orders_models.OrderStatus.SHIPPED, orders_models.OrderStatus.DELIVERED]

    # when
    views = [
        await orders_service.change_order_status(db_session, _principal(staff), input=_update(order, step))
        for step in steps
    ]
    await db_session.commit()

    # then: each step is stored and published, in order
    assert [view.status for view in views] == ["PAID", "SHIPPED", "DELIVERED"]
    assert await _status(db_session, order.id) == "DELIVERED"
    events = await factories.recorded_events(db_session)
    assert [(topic, payload["previousStatus"], payload["status"]) for topic, payload in events] == [
        ("OrderStatusChanged", "PENDING", "PAID"),
        ("OrderStatusChanged", "PAID", "SHIPPED"),
        ("OrderStatusChanged", "SHIPPED", "DELIVERED"),
    ]


async def test_place_order_refuses_an_anonymous_caller_and_takes_no_stock(db_session: AsyncSession) -> None:
    # given
    product = await factories.create_product(db_session, stock=5)
    await db_session.commit()
    order = orders_service.OrderPlace.from_data({"items": [{"productId": product.id, "quantity": 2}]})

    # when
    with pytest.raises(UnauthenticatedError) as refused:
        await orders_service.place_order(db_session, ANONYMOUS, input=order)
    await db_session.commit()

    # then
    assert refused.value.code == "UNAUTHENTICATED"
    assert await _stock(db_session, product.id) == 5
    assert await _order_count(db_session) == 0
    assert await factories.recorded_events(db_session) == []


async def test_cancel_order_lets_a_customer_cancel_their_own_order_but_not_anothers(db_session: AsyncSession) -> None:
    # given: two customers' orders
    customer = await factories.create_user(db_session)
    other = await factories.create_user(db_session)
    product = await factories.create_product(db_session, stock=5)
    own = await factories.create_order(db_session, customer=customer, product=product, quantity=2)
    others = await factories.create_order(db_session, customer=other, product=product, quantity=1)
    await db_session.commit()

    # when
    cancelled = await orders_service.cancel_order(
        db_session, _principal(customer), input=orders_service.OrderCancel(order_id=own.id)
    )
    with pytest.raises(OrderNotFoundError) as refused:
        await orders_service.cancel_order(
            db_session, _principal(customer), input=orders_service.OrderCancel(order_id=others.id)
        )
    await db_session.commit()

    # then: their own order is cancelled and its units are back; the other one is not theirs to see
    assert cancelled.status == "CANCELLED"
    assert await _stock(db_session, product.id) == 7
    assert [(p.code, p.field) for p in refused.value.problems] == [(ErrorCode.NOT_FOUND, ("input", "orderId"))]
    assert await _status(db_session, others.id) == "PENDING"


def test_order_place_input_reports_every_problem_line_by_line() -> None:
    # given: a bad quantity on each line, a product twice, and a key too long
    data = {
        "items": [{"productId": 1, "quantity": 0}, {"productId": 1, "quantity": 1000}],
        "idempotencyKey": "k" * 101,
    }

    # when
    with pytest.raises(InvalidInputError) as refused:
        orders_service.OrderPlace.from_data(data)

    # then
    assert [(problem.code, problem.field) for problem in refused.value.problems] == [
        (ErrorCode.INVALID, ("input", "items", "0", "quantity")),
        (ErrorCode.INVALID, ("input", "items", "1", "quantity")),
        (ErrorCode.DUPLICATE, ("input", "items", "1", "productId")),
        (ErrorCode.INVALID, ("input", "idempotencyKey")),
    ]


async def test_place_order_refuses_a_product_twice_however_the_input_was_built(db_session: AsyncSession) -> None:
    # given: an input built directly, past `from_data`
    customer = await factories.create_user(db_session)
    product = await factories.create_product(db_session, stock=5)
    await db_session.commit()
    line = orders_service.OrderLine(product_id=product.id, quantity=1)
    order = orders_service.OrderPlace(items=[line, line])

    # when
    with pytest.raises(InvalidInputError) as refused:
        await orders_service.place_order(db_session, _principal(customer), input=order)
    await db_session.commit()

    # then
    assert [(p.code, p.field) for p in refused.value.problems] == [
        (ErrorCode.DUPLICATE, ("input", "items", "1", "productId"))
    ]
    assert await _stock(db_session, product.id) == 5
    assert await _order_count(db_session) == 0


def test_order_place_input_reports_problems_line_by_line_then_the_key() -> None:
    # given: a bad quantity on line 0, a line that is no object, a duplicate with a bad quantity, a bad key
    data = {
        "items": [
            {"productId": 1, "quantity": 0},
            5,
            {"productId": 1, "quantity": 0},
        ],
        "idempotencyKey": "",
    }

    # when
    with pytest.raises(InvalidInputError) as refused:
        orders_service.OrderPlace.from_data(data)

    # then
    assert [(p.code, p.field) for p in refused.value.problems] == [
        (ErrorCode.INVALID, ("input", "items", "0", "quantity")),
        (ErrorCode.INVALID, ("input", "items", "1")),
        (ErrorCode.INVALID, ("input", "items", "2", "quantity")),
        (ErrorCode.DUPLICATE, ("input", "items", "2", "productId")),
        (ErrorCode.INVALID, ("input", "idempotencyKey")),
    ]


async def test_change_order_status_refusal_names_the_current_and_the_wanted_status(db_session: AsyncSession) -> None:
    # given: a pending order, which must be paid before it ships
    staff = await factories.create_user(db_session, roles=("STAFF",))
    customer = await factories.create_user(db_session)
    product = await factories.create_product(db_session)
    order = await factories.create_order(db_session, customer=customer, product=product)
    await db_session.commit()

    # when
    with pytest.raises(DomainError) as refused:
        await orders_service.change_order_status(
            db_session, _principal(staff), input=_update(order, orders_models.OrderStatus.SHIPPED)
        )
    await db_session.commit()

    # then
    assert [(p.code, p.message, p.field) for p in refused.value.problems] == [
        (ErrorCode.INVALID_TRANSITION, "An order that is PENDING cannot become SHIPPED.", ("input", "status"))
    ]
    assert await _status(db_session, order.id) == "PENDING"


async def test_change_order_status_that_loses_a_race_names_the_status_the_other_change_left(
    db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a pending order that another transaction cancels between this change's read and its write
    staff = await factories.create_user(db_session, roles=("STAFF",))
    customer = await factories.create_user(db_session)
    product = await factories.create_product(db_session, stock=5)
    order = await factories.create_order(db_session, customer=customer, product=product)
    await db_session.commit()
    set_order_status = orders_repository.set_order_status

    async def cancelled_meanwhile(session: AsyncSession, order_id: int, **kwargs: orders_models.OrderStatus) -> bool:
        await session.execute(
            update(orders_models.Order).where(orders_models.Order.id == order_id).values(status="CANCELLED")
        )
        return await set_order_status(session, order_id, **kwargs)

    monkeypatch.setattr(orders_repository, "set_order_status", cancelled_meanwhile)

    # when
    with pytest.raises(DomainError) as refused:
        await orders_service.change_order_status(
            db_session, _principal(staff), input=_update(order, orders_models.OrderStatus.PAID)
        )

    # then: refused with the status the other change left, and nothing else written
    assert [(p.code, p.message, p.field) for p in refused.value.problems] == [
        (ErrorCode.INVALID_TRANSITION, "An order that is CANCELLED cannot become PAID.", ("input", "status"))
    ]
    assert await _stock(db_session, product.id) == 5
    assert await factories.recorded_events(db_session) == []


def _place(*lines: tuple[int, int]) -> orders_service.OrderPlace:
    items = [orders_service.OrderLine(product_id=product_id, quantity=quantity) for product_id, quantity in lines]
    return orders_service.OrderPlace(items=items)


async def test_place_order_takes_stock_in_product_id_order_whatever_the_order_of_the_lines(
    db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: lines in descending product order (every writer must lock rows in one order, or two orders deadlock)
    customer = await factories.create_user(db_session)
    products = [await factories.create_product(db_session, stock=5) for _ in range(3)]
    await db_session.commit()
    take_stock = orders_repository.take_stock
    taken: list[int] = []

    async def recorded(session: AsyncSession, product_id: int, quantity: int) -> tuple[Decimal, str] | None:
        taken.append(product_id)
        return await take_stock(session, product_id, quantity)

    monkeypatch.setattr(orders_repository, "take_stock", recorded)

    # when
    order = await orders_service.place_order(
        db_session, _principal(customer), input=_place(*((product.id, 1) for product in reversed(products)))
    )
    await db_session.commit()

    # then
    assert taken == sorted(product.id for product in products)
    assert order.status == "PENDING"


async def test_place_order_refusals_say_what_is_wrong_with_each_line_without_naming_the_stock(
    db_session: AsyncSession,
) -> None:
    # given: a product with 1 unit, and an unpublished one
    customer = await factories.create_user(db_session)
    scarce = await factories.create_product(db_session, stock=1)
    hidden = await factories.create_product(db_session, published=False)
    await db_session.commit()

    # when
    with pytest.raises(InvalidInputError) as refused:
        await orders_service.place_order(db_session, _principal(customer), input=_place((hidden.id, 1), (scarce.id, 2)))
    await db_session.commit()

    # then
    assert [(p.code, p.message, p.field) for p in refused.value.problems] == [
        (ErrorCode.NOT_FOUND, "No such product for sale.", ("input", "items", "0", "productId")),
        (ErrorCode.OUT_OF_STOCK, "Not enough units in stock.", ("input", "items", "1", "quantity")),
    ]
    assert await _stock(db_session, scarce.id) == 1
    assert await _order_count(db_session) == 0


async def test_place_order_refuses_items_in_two_currencies(db_session: AsyncSession) -> None:
    # given
    customer = await factories.create_user(db_session)
    dollars = await factories.create_product(db_session)
    euros = await factories.create_product(db_session)
    euros.currency = "EUR"
    await db_session.commit()
    dollars_id, euros_id = dollars.id, euros.id

    # when
    with pytest.raises(InvalidInputError) as refused:
        await orders_service.place_order(db_session, _principal(customer), input=_place((dollars_id, 1), (euros_id, 1)))
    await db_session.commit()

    # then: refused, and the stock taken in the savepoint went back
    assert [(p.code, p.message, p.field) for p in refused.value.problems] == [
        (ErrorCode.INVALID, "Order items of one currency.", ("input", "items"))
    ]
    assert [await _stock(db_session, dollars_id), await _order_count(db_session)] == [5, 0]


def test_order_place_input_reports_too_many_lines_alone_and_duplicates_of_valid_lines() -> None:
    # given: one line too many, all of one product; and two valid lines of one product
    too_many = [{"productId": 1, "quantity": 1}] * (orders_service.MAX_LINES + 1)
    twice = [{"productId": 1, "quantity": 1}, {"productId": 1, "quantity": 2}]

    # when
    with pytest.raises(InvalidInputError) as too_long:
        orders_service.OrderPlace.from_data({"items": too_many})
    with pytest.raises(InvalidInputError) as duplicated:
        orders_service.OrderPlace.from_data({"items": twice})

    # then
    assert [(p.code, p.field) for p in too_long.value.problems] == [(ErrorCode.TOO_LONG, ("input", "items"))]
    assert [(p.code, p.field) for p in duplicated.value.problems] == [
        (ErrorCode.DUPLICATE, ("input", "items", "1", "productId"))
    ]


async def test_place_order_keeps_the_currency_of_its_products(db_session: AsyncSession) -> None:
    # given
    customer = await factories.create_user(db_session)
    euros = await factories.create_product(db_session, price="2.50")
    euros.currency = "EUR"
    await db_session.commit()

    # when
    order = await orders_service.place_order(db_session, _principal(customer), input=_place((euros.id, 2)))
    await db_session.commit()

    # then
    assert (order.currency, order.total_amount) == ("EUR", Decimal("5.00"))


async def test_place_order_whose_key_is_used_by_a_concurrent_call_meanwhile_answers_with_that_order(
    db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: an order placed with a key, which this call's first lookup misses (as when it commits just after)
    customer = await factories.create_user(db_session)
    product = await factories.create_product(db_session, stock=5)
    await db_session.commit()
    principal, product_id = _principal(customer), product.id
    first = await orders_service.place_order(
        db_session,
        principal,
        input=orders_service.OrderPlace(
            items=[orders_service.OrderLine(product_id=product_id, quantity=1)], idempotency_key="k"
        ),
    )
    await db_session.commit()
    first_id = first.id
    lookup = orders_repository.get_order_by_idempotency_key
    lookups: list[tuple[int, str]] = []

    async def racing_lookup(session: AsyncSession, customer_id: int, key: str) -> orders_models.Order | None:
        lookups.append((customer_id, key))
        return None if len(lookups) == 1 else await lookup(session, customer_id, key)

    monkeypatch.setattr(orders_repository, "get_order_by_idempotency_key", racing_lookup)
    retry = orders_service.OrderPlace(
        items=[orders_service.OrderLine(product_id=product_id, quantity=1)], idempotency_key="k"
    )
    other = orders_service.OrderPlace(
        items=[orders_service.OrderLine(product_id=product_id, quantity=2)], idempotency_key="k"
    )

    # when: the same request again, then another request with the same key
    replayed = await orders_service.place_order(db_session, principal, input=retry)
    lookups.clear()
    with pytest.raises(DomainError) as reused:
        await orders_service.place_order(db_session, principal, input=other)
    await db_session.commit()

    # then: the first order, its stock taken once; a different request with the key is refused
    assert replayed.id == first_id
    assert [p.code for p in reused.value.problems] == [ErrorCode.IDEMPOTENCY_KEY_REUSED]
    assert lookups == [(principal.user_id, "k")] * 2
    assert (await _stock(db_session, product_id), await _order_count(db_session)) == (4, 1)


def test_order_place_input_finds_duplicates_by_either_name_and_requires_lines() -> None:
    # given: lines given by their Python names, as a script would; and no lines at all
    by_name = {"items": [{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 2}]}

    # when
    with pytest.raises(InvalidInputError) as duplicated:
        orders_service.OrderPlace.from_data(by_name)
    with pytest.raises(InvalidInputError) as missing:
        orders_service.OrderPlace.from_data({})

    # then
    assert [(p.code, p.field) for p in duplicated.value.problems] == [
        (ErrorCode.DUPLICATE, ("input", "items", "1", "productId"))
    ]
    assert [(p.code, p.field) for p in missing.value.problems] == [(ErrorCode.REQUIRED, ("input", "items"))]


def test_order_place_input_puts_a_duplicate_before_the_problems_of_later_lines() -> None:
    # given: line 1 repeats line 0's product; line 2 has a bad quantity
    data = {
        "items": [{"productId": 1, "quantity": 1}, {"productId": 1, "quantity": 1}, {"productId": 2, "quantity": 0}]
    }

    # when
    with pytest.raises(InvalidInputError) as refused:
        orders_service.OrderPlace.from_data(data)

    # then
    assert [(p.code, p.field) for p in refused.value.problems] == [
        (ErrorCode.DUPLICATE, ("input", "items", "1", "productId")),
        (ErrorCode.INVALID, ("input", "items", "2", "quantity")),
    ]
