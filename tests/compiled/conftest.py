"""Fixtures of the compiled-path tests: a large cost budget and a small catalog with reviews."""

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from api.settings import Settings
from tests import factories
from tests.auth import ANONYMOUS, Account, Caller
from tests.compiled.support import Catalog


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Every document runs twice per caller: a budget no corpus here spends.
    return settings.model_copy(update={"cost_budget": "100000000/minute", "graphql_rate_limit": "100000/minute"})


@pytest.fixture
async def catalog(db_session: AsyncSession) -> Catalog:
    top = await factories.create_category(db_session, name="Garden")
    child = await factories.create_category(db_session, name="Tools", parent=top)
    authors = [await factories.create_user(db_session, name=f"Author {n}") for n in range(3)]
    products = []
    for n in range(6):
        product = await factories.create_product(
            db_session, price=f"{n + 1}.50", stock=n, category=(top, child, None)[n % 3]
        )
        products.append(product)
    hidden = await factories.create_product(db_session, published=False, category=child)
    reviews = []
    for n, product in enumerate(products[:4]):
        for m, author in enumerate(authors[: n + 1]):
            # Each author's ratings differ (and differ from their small ids): a rating read from the wrong column shows.
            rating = (n + 2 * m) % 5 + 1
            reviews.append(await factories.create_review(db_session, product=product, author=author, rating=rating))
    await db_session.commit()
    return Catalog(
        products=[product.id for product in products],
        hidden=hidden.id,
        categories=[top.id, child.id],
        reviews=[review.id for review in reviews],
        users=[author.id for author in authors],
        slug=products[0].slug,
    )


@pytest.fixture
def callers(customer: Account, staff: Account, customer_api_key: Account, staff_api_key: Account) -> dict[str, Caller]:
    """Each caller every document runs as, by name."""
    return {
        "anonymous": ANONYMOUS,
        "customer": customer,
        "staff": staff,
        "customer API key": customer_api_key,
        "staff API key": staff_api_key,
    }
