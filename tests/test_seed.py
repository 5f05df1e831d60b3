from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domains.products.models import Category, Product, Review
from domains.users.models import User
from domains.users.passwords import verify_password
from scripts.seed import DEMO_PASSWORD, seed


async def _snapshot(session: AsyncSession) -> dict[str, object]:
    async def count(model: type[object]) -> int:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    return {
        "users": await count(User),
        "categories": await count(Category),
        "products": await count(Product),
        "reviews": await count(Review),
        "stock": await session.scalar(select(func.sum(Product.stock))),
        "ratings": await session.scalar(select(func.sum(Product.rating_sum))),
        "last_update": await session.scalar(select(func.max(Product.updated_at))),
    }


async def test_seed_loads_the_demo_data_once(db_session: AsyncSession) -> None:
    # given
    await seed(db_session)
    await db_session.commit()
    first = await _snapshot(db_session)

    # when
    await seed(db_session)
    await db_session.commit()

    # then
    assert await _snapshot(db_session) == first
    assert first["products"] >= 1000  # type: ignore[operator]
    assert first["reviews"] >= 10000  # type: ignore[operator]


async def test_seed_has_the_documented_accounts_and_a_varied_catalog(db_session: AsyncSession) -> None:
    # given
    await seed(db_session)
    await db_session.commit()

    # when
    accounts = {
        user.email: user
        for user in (await db_session.scalars(select(User).where(User.email.like("%@example.com")))).all()
        if not user.email.startswith("shopper")
    }
    sold_out = await db_session.scalar(select(func.count()).where(Product.stock == 0))
    unpublished = await db_session.scalar(select(func.count()).where(Product.is_published.is_(False)))
    nested = await db_session.scalar(select(func.count()).where(Category.parent_id.is_not(None)))

    # then
    assert {email: user.roles for email, user in accounts.items()} == {
        "admin@example.com": ["ADMIN"],
        "staff@example.com": ["STAFF"],
        "customer@example.com": ["CUSTOMER"],
    }
    assert (await verify_password(DEMO_PASSWORD, accounts["customer@example.com"].password_hash))[0]
    assert sold_out
    assert unpublished
    assert nested
