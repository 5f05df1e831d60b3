"""The catalog's and reviews' rules of who may do what, enforced by the services themselves, without HTTP."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.exceptions import ClientError, DomainError, ForbiddenError, UnauthenticatedError
from domains.common.outbox import OutboxEvent
from domains.common.principal import ANONYMOUS, Principal, Role
from domains.products import models as products_models
from domains.products import repository as products_repository
from domains.products import service as products_service
from domains.products.repository import MAX_STOCK
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


async def _rejected(session: AsyncSession, write: Callable[[], Awaitable[object]]) -> DomainError:
    # As `_refused`, for the refusals that are the caller's userErrors.
    with pytest.raises(DomainError) as rejected:
        await write()
    await session.commit()
    return rejected.value


async def test_stock_adjust_refusals_name_the_stock_left_and_the_largest_stock(
    db_session: AsyncSession, catalog: Catalog, staff: Principal
) -> None:
    # given: a product with 5 units
    def adjust(delta: int) -> Callable[[], Awaitable[object]]:
        stock = products_service.ProductStockAdjust(product_id=catalog.product.id, delta=delta)
        return lambda: products_service.adjust_product_stock(db_session, staff, input=stock)

    # when
    below_zero = await _rejected(db_session, adjust(-6))
    over_limit = await _rejected(db_session, adjust(MAX_STOCK))
    missing = await _rejected(
        db_session,
        lambda: products_service.adjust_product_stock(
            db_session, staff, input=products_service.ProductStockAdjust(product_id=catalog.product.id + 99, delta=1)
        ),
    )

    # then
    assert [(p.code, p.message, p.field) for p in below_zero.problems] == [
        ("OUT_OF_STOCK", "Only 5 units are in stock; stock cannot go below 0.", ("input", "delta"))
    ]
    assert [(p.code, p.message, p.field) for p in over_limit.problems] == [
        ("INVALID", f"Stock cannot exceed {MAX_STOCK} units.", ("input", "delta"))
    ]
    assert [(p.code, p.field) for p in missing.problems] == [("NOT_FOUND", ("input", "productId"))]
    assert await factories.recorded_events(db_session) == []


async def test_review_delete_by_another_customer_says_who_may_delete_it(
    db_session: AsyncSession, catalog: Catalog, customer: Principal
) -> None:
    # given: a published product, so the review is visible to the customer
    published = update(products_models.Product).where(products_models.Product.id == catalog.product.id)
    await db_session.execute(published.values(is_published=True))
    await db_session.commit()

    # when
    error = await _refused(
        db_session, lambda: products_service.delete_review(db_session, customer, review_id=catalog.review.id)
    )

    # then
    assert str(error) == "Only the review's author or staff can delete it."


async def _rating(session: AsyncSession, product_id: int) -> tuple[int, int, Decimal]:
    stmt = select(
        products_models.Product.rating_count, products_models.Product.rating_sum, products_models.Product.rating_average
    ).where(products_models.Product.id == product_id)
    count, total, average = (await session.execute(stmt)).one()
    await session.commit()
    return count, total, Decimal(average)


async def test_review_writes_recompute_the_rating_of_their_product_only(
    db_session: AsyncSession, catalog: Catalog, customer: Principal, staff: Principal
) -> None:
    # given: the catalog's product (one 5-star review), published, and another product whose stored rating is
    # stale on purpose: a write that recomputed every product (and locked every row) would correct it
    await products_service.update_product(
        db_session, staff, input=products_service.ProductUpdate(product_id=catalog.product.id, is_published=True)
    )
    other = await factories.create_product(db_session)
    await db_session.execute(
        update(products_models.Product).where(products_models.Product.id == other.id).values(rating_count=7)
    )
    await db_session.commit()

    # when
    review = await products_service.create_review(
        db_session, customer, input=products_service.ReviewCreate(product_id=catalog.product.id, rating=2)
    )
    await db_session.commit()
    after_create = await _rating(db_session, catalog.product.id)
    await products_service.delete_review(db_session, customer, review_id=review.id)
    await db_session.commit()
    after_delete = await _rating(db_session, catalog.product.id)

    # then
    assert after_create == (2, 7, Decimal("3.5"))
    assert after_delete == (1, 5, Decimal(5))
    assert (await _rating(db_session, other.id))[0] == 7


TAKEN = "taken-slug"

# Each write of a unique slug, with the lookup its conflict check makes: each asks for TAKEN, which a
# category and a product other than the catalog's already have.
SLUG_WRITES: dict[str, tuple[str, Write]] = {
    "create a category": (
        "get_category_by_slug",
        lambda s, p, c: products_service.create_category(
            s, p, input=products_service.CategoryCreate(name="Again", slug=TAKEN)
        ),
    ),
    "rename a category": (
        "get_category_by_slug",
        lambda s, p, c: products_service.update_category(
            s, p, input=products_service.CategoryUpdate(category_id=c.empty.id, slug=TAKEN)
        ),
    ),
    "create a product": (
        "get_product_id_by_slug",
        lambda s, p, c: products_service.create_product(
            s, p, input=products_service.ProductCreate(sku="NEW-1", name="New", slug=TAKEN, price=Decimal(1))
        ),
    ),
    "rename a product": (
        "get_product_id_by_slug",
        lambda s, p, c: products_service.update_product(
            s, p, input=products_service.ProductUpdate(product_id=c.product.id, slug=TAKEN)
        ),
    ),
}


@pytest.mark.parametrize("name", SLUG_WRITES)
async def test_a_slug_taken_between_the_check_and_the_insert_is_reported_as_taken(
    db_session: AsyncSession, catalog: Catalog, staff: Principal, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # given: the first lookup of the slug misses its row, as when a concurrent transaction commits it just after
    lookup_name, write = SLUG_WRITES[name]
    (await factories.create_category(db_session)).slug = TAKEN
    (await factories.create_product(db_session)).slug = TAKEN
    await db_session.commit()
    lookup = getattr(products_repository, lookup_name)
    lookups: list[str] = []

    async def racing_lookup(session: AsyncSession, slug: str) -> object:
        lookups.append(slug)
        return None if len(lookups) == 1 else await lookup(session, slug)

    monkeypatch.setattr(products_repository, lookup_name, racing_lookup)
    before = await _store(db_session)

    # when: the write fails on the unique slug, in a savepoint
    error = await _rejected(db_session, lambda: write(db_session, staff, catalog))

    # then
    assert [(p.code, p.field) for p in error.problems] == [("ALREADY_EXISTS", ("input", "slug"))]
    assert lookups == [TAKEN, TAKEN]
    assert await _store(db_session) == before


async def test_a_review_written_between_the_check_and_the_insert_is_reported_as_existing(
    db_session: AsyncSession, catalog: Catalog, staff: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the author's own review, which the first check misses as if it were committed just after
    await products_service.update_product(
        db_session, staff, input=products_service.ProductUpdate(product_id=catalog.product.id, is_published=True)
    )
    await db_session.commit()
    lookup = products_repository.get_review_id_by_author
    lookups: list[tuple[int, int]] = []

    async def racing_lookup(session: AsyncSession, product_id: int, user_id: int) -> int | None:
        lookups.append((product_id, user_id))
        return None if len(lookups) == 1 else await lookup(session, product_id, user_id)

    monkeypatch.setattr(products_repository, "get_review_id_by_author", racing_lookup)
    before = await _store(db_session)

    # when
    error = await _rejected(
        db_session,
        lambda: products_service.create_review(
            db_session,
            _principal(catalog.author),
            input=products_service.ReviewCreate(product_id=catalog.product.id, rating=1),
        ),
    )

    # then
    assert [(p.code, p.field) for p in error.problems] == [("ALREADY_EXISTS", ("input", "productId"))]
    assert lookups == [(catalog.product.id, catalog.author.id)] * 2
    assert await _store(db_session) == before
