"""Builders for test data, written through the ORM into the test database."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.outbox import OutboxEvent
from domains.orders import models as orders_models
from domains.products import models as products_models
from domains.products import repository as products_repository
from domains.users import models as users_models
from domains.users.passwords import hash_password

_sequence = itertools.count(1)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def create_user(
    session: AsyncSession,
    *,
    name: str | None = None,
    roles: tuple[str, ...] = ("CUSTOMER",),
    password: str | None = None,
) -> users_models.User:
    """Create an account; without a password it cannot sign in (its hash matches nothing)."""
    n = next(_sequence)
    password_hash = await hash_password(password) if password is not None else "!unusable"
    user = users_models.User(
        email=f"user{n}@example.com", name=name or f"User {n}", password_hash=password_hash, roles=list(roles)
    )
    session.add(user)
    await session.flush()
    return user


async def create_category(
    session: AsyncSession, *, name: str | None = None, parent: products_models.Category | None = None
) -> products_models.Category:
    n = next(_sequence)
    name = name or f"Category {n}"
    category = products_models.Category(
        name=name, slug=f"category-{n}", description="", parent_id=parent.id if parent else None
    )
    session.add(category)
    await session.flush()
    return category


async def create_product(
    session: AsyncSession,
    *,
    name: str | None = None,
    price: str = "10.00",
    stock: int = 5,
    published: bool = True,
    category: products_models.Category | None = None,
    created_at: datetime | None = None,
) -> products_models.Product:
    n = next(_sequence)
    product = products_models.Product(
        sku=f"SKU-{n}",
        name=name or f"Product {n}",
        slug=f"product-{n}",
        description="",
        price=Decimal(price),
        stock=stock,
        is_published=published,
        category_id=category.id if category else None,
        created_at=created_at or T0 + timedelta(minutes=n),
    )
    session.add(product)
    await session.flush()
    return product


async def create_review(
    session: AsyncSession,
    *,
    product: products_models.Product,
    author: users_models.User,
    rating: int = 5,
    created_at: datetime | None = None,
) -> products_models.Review:
    n = next(_sequence)
    review = products_models.Review(
        product_id=product.id,
        user_id=author.id,
        rating=rating,
        title=f"Review {n}",
        body="",
        created_at=created_at or T0 + timedelta(minutes=n),
    )
    session.add(review)
    await session.flush()
    await products_repository.refresh_product_ratings(session, [product.id])
    return review


async def create_order(
    session: AsyncSession,
    *,
    customer: users_models.User,
    product: products_models.Product,
    quantity: int = 1,
    status: str = "PENDING",
) -> orders_models.Order:
    """Create an order row directly (the stock is not touched): for tests about reading and changing orders."""
    n = next(_sequence)
    line_total = product.price * quantity
    order = orders_models.Order(
        number=f"T-{n:06d}", customer_id=customer.id, status=status, total_amount=line_total, currency="USD"
    )
    session.add(order)
    await session.flush()
    session.add(
        orders_models.OrderItem(
            order_id=order.id, product_id=product.id, quantity=quantity, unit_price=product.price, line_total=line_total
        )
    )
    await session.flush()
    return order


async def recorded_events(session: AsyncSession) -> list[tuple[str, dict[str, Any]]]:
    """The domain events in the outbox, oldest first, as (topic, payload)."""
    rows = await session.execute(select(OutboxEvent.topic, OutboxEvent.payload).order_by(OutboxEvent.id))
    return [(topic, payload) for topic, payload in rows]
