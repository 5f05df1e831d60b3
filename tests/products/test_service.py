"""The catalog's and reviews' rules of who may do what, enforced by the services themselves, without HTTP."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.exceptions import ClientError, ForbiddenError, UnauthenticatedError
from domains.common.outbox import OutboxEvent
from domains.common.principal import ANONYMOUS, Principal, Role
from domains.products import models as products_models
from domains.products import service as products_service
from domains.users import models as users_models
from tests import factories


@dataclass(frozen=True)
class Catalog:
    """A small store: a category with a subcategory holding a draft product, an empty category, a review."""

    parent: products_models.Category
    child: products_models.Category
    empty: products_models.Category
    product: products_models.Product
    review: products_models.Review
    author: users_models.User


def _principal(user: users_models.User) -> Principal:
    return Principal(user_id=user.id, roles=frozenset(Role(role) for role in user.roles))


@pytest.fixture
async def catalog(db_session: AsyncSession) -> Catalog:
    parent = await factories.create_category(db_session)
    child = await factories.create_category(db_session, parent=parent)
    empty = await factories.create_category(db_session)
    product = await factories.create_product(db_session, category=child, published=False, stock=5)
    author = await factories.create_user(db_session)
    review = await factories.create_review(db_session, product=product, author=author)
    await db_session.commit()
    return Catalog(parent, child, empty, product, review, author)


@pytest.fixture
async def customer(db_session: AsyncSession) -> Principal:
    user = await factories.create_user(db_session)
    await db_session.commit()
    return _principal(user)


@pytest.fixture
async def staff(db_session: AsyncSession) -> Principal:
    user = await factories.create_user(db_session, roles=("STAFF",))
    await db_session.commit()
    return _principal(user)


Write = Callable[[AsyncSession, Principal, Catalog], Awaitable[object]]

# Each catalog write, as a background task or a script would call it, and the event it records.
CATALOG_WRITES: dict[str, tuple[Write, str]] = {
    "create a category": (
        lambda s, p, c: products_service.create_category(
            s, p, input=products_service.CategoryCreate(name="New", slug="new")
        ),
        "CategoryCreated",
    ),
    "move a category": (
        lambda s, p, c: products_service.update_category(
            s, p, input=products_service.CategoryUpdate(category_id=c.child.id, parent_id=c.empty.id)
        ),
        "CategoryUpdated",
    ),
    "delete a category": (
        lambda s, p, c: products_service.delete_category(s, p, category_id=c.empty.id),
        "CategoryDeleted",
    ),
    "create a product": (
        lambda s, p, c: products_service.create_product(
            s, p, input=products_service.ProductCreate(sku="NEW-1", name="New", slug="new", price=Decimal("1.00"))
        ),
        "ProductCreated",
    ),
    "publish a product": (
        lambda s, p, c: products_service.update_product(
            s, p, input=products_service.ProductUpdate(product_id=c.product.id, is_published=True)
        ),
        "ProductUpdated",
    ),
    "adjust stock": (
        lambda s, p, c: products_service.adjust_product_stock(
            s, p, input=products_service.ProductStockAdjust(product_id=c.product.id, delta=10)
        ),
        "ProductStockAdjusted",
    ),
    "delete a product": (
        lambda s, p, c: products_service.delete_product(s, p, product_id=c.product.id),
        "ProductDeleted",
    ),
}


async def _store(session: AsyncSession) -> dict[str, Any]:
    """Every catalog and review row, and the outbox, as stored now."""
    snapshot = {
        "categories": (await session.execute(select(products_models.Category.__table__))).all(),
        "products": (await session.execute(select(products_models.Product.__table__))).all(),
        "reviews": (await session.execute(select(products_models.Review.__table__))).all(),
        "events": await session.scalar(select(func.count()).select_from(OutboxEvent)),
    }
    await session.commit()  # ends the read, so that the next snapshot sees later commits
    return snapshot


async def _refused(session: AsyncSession, write: Callable[[], Awaitable[object]]) -> ClientError:
    # A caller that commits whatever the service left in the session, to show it left nothing.
    with pytest.raises(ClientError) as refused:
        await write()
    await session.commit()
    return refused.value


@pytest.mark.parametrize("name", CATALOG_WRITES)
async def test_catalog_write_is_forbidden_to_a_customer_and_writes_nothing(
    db_session: AsyncSession, catalog: Catalog, customer: Principal, name: str
) -> None:
    # given
    write, _ = CATALOG_WRITES[name]
    before = await _store(db_session)

    # when
    error = await _refused(db_session, lambda: write(db_session, customer, catalog))

    # then
    assert isinstance(error, ForbiddenError)
    assert error.code == "FORBIDDEN"
    assert await _store(db_session) == before


@pytest.mark.parametrize("name", CATALOG_WRITES)
async def test_catalog_write_asks_an_anonymous_caller_to_sign_in_and_writes_nothing(
    db_session: AsyncSession, catalog: Catalog, name: str
) -> None:
    # given
    write, _ = CATALOG_WRITES[name]
    before = await _store(db_session)

    # when
    error = await _refused(db_session, lambda: write(db_session, ANONYMOUS, catalog))

    # then
    assert isinstance(error, UnauthenticatedError)
    assert error.code == "UNAUTHENTICATED"
    assert await _store(db_session) == before


@pytest.mark.parametrize("name", CATALOG_WRITES)
async def test_catalog_write_is_made_for_staff_with_its_event(
    db_session: AsyncSession, catalog: Catalog, staff: Principal, name: str
) -> None:
    # given
    write, topic = CATALOG_WRITES[name]

    # when
    await write(db_session, staff, catalog)
    await db_session.commit()

    # then
    assert [event_topic for event_topic, _ in await factories.recorded_events(db_session)] == [topic]


async def test_catalog_write_checks_the_role_before_reading_or_validating_the_input(
    db_session: AsyncSession, catalog: Catalog, customer: Principal
) -> None:
    # given: inputs that are malformed and name rows that do not exist, unchecked as GraphQL hands them over
    bad_product = products_service.ProductCreate.model_construct(
        sku="no spaces", name="", slug="Not A Slug", price=Decimal("-1"), category_id=catalog.empty.id + 999
    )
    missing_move = products_service.CategoryUpdate(category_id=catalog.child.id + 999, parent_id=catalog.parent.id)

    # when
    refusals = [
        await _refused(db_session, lambda: products_service.create_product(db_session, customer, input=bad_product)),
        await _refused(db_session, lambda: products_service.update_category(db_session, customer, input=missing_move)),
        await _refused(db_session, lambda: products_service.delete_product(db_session, ANONYMOUS, product_id=0)),
    ]

    # then: the caller learns only that they may not, not what is wrong with the input or what exists
    assert [error.code for error in refusals] == ["FORBIDDEN", "FORBIDDEN", "UNAUTHENTICATED"]


async def test_customer_publishing_a_product_leaves_it_unpublished(
    db_session: AsyncSession, catalog: Catalog, customer: Principal
) -> None:
    # given: a draft product
    publish = products_service.ProductUpdate(product_id=catalog.product.id, is_published=True, name="Renamed")

    # when
    error = await _refused(db_session, lambda: products_service.update_product(db_session, customer, input=publish))

    # then
    assert error.code == "FORBIDDEN"
    stored = (
        await db_session.execute(
            select(products_models.Product.is_published, products_models.Product.name).where(
                products_models.Product.id == catalog.product.id
            )
        )
    ).one()
    assert tuple(stored) == (False, catalog.product.name)
    assert await factories.recorded_events(db_session) == []


async def test_review_delete_is_forbidden_to_another_customer_and_keeps_the_review(
    db_session: AsyncSession, catalog: Catalog, customer: Principal
) -> None:
    # given: another customer's review of a published product, which this customer can see
    published = update(products_models.Product).where(products_models.Product.id == catalog.product.id)
    await db_session.execute(published.values(is_published=True))
    await db_session.commit()
    before = await _store(db_session)

    # when
    error = await _refused(
        db_session, lambda: products_service.delete_review(db_session, customer, review_id=catalog.review.id)
    )

    # then
    assert isinstance(error, ForbiddenError)
    assert error.code == "FORBIDDEN"
    assert await _store(db_session) == before


async def test_review_delete_is_allowed_to_its_author_and_to_staff(
    db_session: AsyncSession, catalog: Catalog, staff: Principal
) -> None:
    # given: a second review of the same product, by staff's hand to delete
    other = await factories.create_review(
        db_session, product=catalog.product, author=await factories.create_user(db_session)
    )
    await db_session.commit()

    # when
    by_author = await products_service.delete_review(
        db_session, _principal(catalog.author), review_id=catalog.review.id
    )
    by_staff = await products_service.delete_review(db_session, staff, review_id=other.id)
    await db_session.commit()

    # then
    assert (by_author.id, by_staff.id) == (catalog.review.id, other.id)
    assert await db_session.scalar(select(func.count()).select_from(products_models.Review)) == 0
    assert [topic for topic, _ in await factories.recorded_events(db_session)] == ["ReviewDeleted", "ReviewDeleted"]


async def test_review_create_asks_an_anonymous_caller_to_sign_in_and_writes_nothing(
    db_session: AsyncSession, catalog: Catalog
) -> None:
    # given
    review = products_service.ReviewCreate(product_id=catalog.product.id, rating=5)
    before = await _store(db_session)

    # when
    error = await _refused(db_session, lambda: products_service.create_review(db_session, ANONYMOUS, input=review))

    # then
    assert isinstance(error, UnauthenticatedError)
    assert error.code == "UNAUTHENTICATED"
    assert await _store(db_session) == before


async def test_review_create_is_made_for_a_signed_in_customer(
    db_session: AsyncSession, catalog: Catalog, customer: Principal, staff: Principal
) -> None:
    # given: a product the customer can see
    await products_service.update_product(
        db_session, staff, input=products_service.ProductUpdate(product_id=catalog.product.id, is_published=True)
    )
    await db_session.commit()

    # when
    review = await products_service.create_review(
        db_session,
        customer,
        input=products_service.ReviewCreate(product_id=catalog.product.id, rating=4, title=" Good "),
    )
    await db_session.commit()

    # then
    assert (review.user_id, review.rating, review.title) == (customer.user_id, 4, "Good")
