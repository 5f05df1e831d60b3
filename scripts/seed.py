"""Demo data for development (`make seed`): three accounts, a category tree, products, reviews.

Deterministic and idempotent: every row has a stable natural key (e-mail, slug, sku), and a
section that is already present is left as it is, so seeding twice changes nothing.
"""

import argparse
import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import structlog
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import create_engine, create_sessionmaker
from api.observability import configure_logging
from api.settings import Settings, get_settings
from domains.common.principal import Role
from domains.products import repository as products_repository
from domains.products.models import Category, Product, Review
from domains.users.models import User
from domains.users.passwords import hash_password

DEMO_PASSWORD = "storefront-demo"  # noqa: S105 - the documented demo password, development only
DEMO_ACCOUNTS = (
    ("admin@example.com", "Ada Admin", [Role.ADMIN.value]),
    ("staff@example.com", "Sam Staff", [Role.STAFF.value]),
    ("customer@example.com", "Casey Customer", [Role.CUSTOMER.value]),
)
CATEGORY_TREE = {
    "Electronics": ("Phones", "Laptops", "Audio", "Cameras"),
    "Home & Kitchen": ("Cookware", "Furniture", "Lighting"),
    "Books": ("Fiction", "Science", "Cooking"),
    "Sports & Outdoors": ("Camping", "Cycling", "Running"),
    "Toys & Games": ("Board Games", "Puzzles"),
}
ADJECTIVES = ("Classic", "Compact", "Deluxe", "Eco", "Ergonomic", "Pro", "Smart", "Ultra", "Vintage", "Wireless")
NOUNS = ("Backpack", "Blender", "Chair", "Charger", "Headphones", "Kettle", "Lamp", "Novel", "Speaker", "Tent")
REVIEW_TITLES = ("Great value", "Does the job", "Not for me", "Love it", "Solid build", "Could be better")
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)

logger = structlog.get_logger("scripts.seed")


DEFAULT_PRODUCTS = 1200
DEFAULT_CUSTOMERS = 240
DEFAULT_REVIEWS_PER_CUSTOMER = 50


@dataclass(frozen=True)
class SeedSize:
    products: int = DEFAULT_PRODUCTS
    customers: int = DEFAULT_CUSTOMERS
    reviews_per_customer: int = DEFAULT_REVIEWS_PER_CUSTOMER


def _slugify(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-").replace("--", "-")


async def _seed_accounts(session: AsyncSession, size: SeedSize) -> list[int]:
    if not await session.scalar(select(func.count()).select_from(User)):
        password_hash = await hash_password(DEMO_PASSWORD)
        rows: list[dict[str, object]] = [
            {"email": e, "name": n, "roles": r, "password_hash": password_hash} for e, n, r in DEMO_ACCOUNTS
        ]
        rows += [
            {
                "email": f"shopper{i:05d}@example.com",
                "name": f"Shopper {i:05d}",
                "roles": [Role.CUSTOMER.value],
                "password_hash": password_hash,
                "created_at": EPOCH + timedelta(hours=i),
            }
            for i in range(size.customers)
        ]
        await session.execute(insert(User), rows)
    return list((await session.scalars(select(User.id).order_by(User.id))).all())


async def _seed_categories(session: AsyncSession) -> list[int]:
    if not await session.scalar(select(func.count()).select_from(Category)):
        for parent_name, children in CATEGORY_TREE.items():
            parent = Category(name=parent_name, slug=_slugify(parent_name), description=f"All things {parent_name}.")
            session.add(parent)
            await session.flush()
            session.add_all(
                Category(name=name, slug=_slugify(name), description=f"{name} in {parent_name}.", parent_id=parent.id)
                for name in children
            )
        await session.flush()
    return list((await session.scalars(select(Category.id).where(Category.parent_id.is_not(None)))).all())


def _product_rows(rng: random.Random, size: SeedSize, category_ids: list[int]) -> list[dict[str, object]]:
    rows = []
    for i in range(size.products):
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {i:05d}"
        rows.append(
            {
                "sku": f"SKU-{i:06d}",
                "name": name,
                "slug": _slugify(name),
                "description": f"The {name.lower()}, made to last.",
                # Prices repeat on purpose (.99 endings over a small range): ties must page correctly.
                "price": Decimal(rng.randint(1, 300)) - Decimal("0.01"),
                "stock": 0 if i % 17 == 0 else rng.randint(1, 500),
                "is_published": i % 23 != 0,
                "category_id": category_ids[i % len(category_ids)],
                "created_at": EPOCH + timedelta(minutes=7 * i),
                "updated_at": EPOCH + timedelta(minutes=7 * i),
            }
        )
    return rows


async def _seed_products(session: AsyncSession, rng: random.Random, size: SeedSize, category_ids: list[int]) -> None:
    if not await session.scalar(select(func.count()).select_from(Product)):
        rows = _product_rows(rng, size, category_ids)
        for start in range(0, len(rows), 5000):
            await session.execute(insert(Product), rows[start : start + 5000])


async def _seed_reviews(session: AsyncSession, rng: random.Random, size: SeedSize, user_ids: list[int]) -> None:
    if await session.scalar(select(func.count()).select_from(Review)):
        return
    product_ids = list((await session.scalars(select(Product.id).order_by(Product.id))).all())
    customers = user_ids[len(DEMO_ACCOUNTS) :]
    batch: list[dict[str, object]] = []
    for n, user_id in enumerate(customers):
        for k, product_id in enumerate(rng.sample(product_ids, min(size.reviews_per_customer, len(product_ids)))):
            rating = rng.choices((1, 2, 3, 4, 5), weights=(1, 1, 3, 5, 5))[0]
            written = EPOCH + timedelta(days=30, minutes=n * 97 + k * 13)
            batch.append(
                {
                    "product_id": product_id,
                    "user_id": user_id,
                    "rating": rating,
                    "title": rng.choice(REVIEW_TITLES),
                    "body": f"Rated {rating} of 5 after {rng.randint(1, 52)} weeks of use.",
                    "created_at": written,
                    "updated_at": written,
                }
            )
        if len(batch) >= 10000:
            await session.execute(insert(Review), batch)
            batch = []
    if batch:
        await session.execute(insert(Review), batch)
    await products_repository.refresh_product_ratings(session)


async def seed(session: AsyncSession, size: SeedSize | None = None) -> None:
    """Insert the demo data that is missing; never change what is there."""
    size = size or SeedSize()
    rng = random.Random(20261127)  # noqa: S311 - demo data, not security
    user_ids = await _seed_accounts(session, size)
    category_ids = await _seed_categories(session)
    await _seed_products(session, rng, size, category_ids)
    await _seed_reviews(session, rng, size, user_ids)


async def run(settings: Settings, size: SeedSize) -> None:
    """Seed the configured database in one transaction."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await seed(session, size)
    finally:
        await engine.dispose()
    logger.info("seed.done", products=size.products, customers=size.customers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=DEFAULT_PRODUCTS)
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument("--reviews-per-customer", type=int, default=DEFAULT_REVIEWS_PER_CUSTOMER)
    args = parser.parse_args()
    settings = get_settings()
    configure_logging(settings)
    size = SeedSize(args.products, args.customers, args.reviews_per_customer)
    asyncio.run(run(settings, size))


if __name__ == "__main__":
    main()
