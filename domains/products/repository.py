"""SQL for categories, products and reviews. Visibility rules live in these statements."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Float, Numeric, Select, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from domains.common.keyset import (
    Ordering,
    Page,
    PageRequest,
    SortKey,
    attribute_key,
    keyset_select,
    keyset_window_select,
    to_page,
)
from domains.common.principal import Principal
from domains.products.models import Category, Product, Review


class ProductSortField(StrEnum):
    CREATED_AT = "CREATED_AT"
    PRICE = "PRICE"
    NAME = "NAME"
    RATING = "RATING"


class ReviewSortField(StrEnum):
    CREATED_AT = "CREATED_AT"
    RATING = "RATING"


PRODUCT_SORT_KEYS = {
    ProductSortField.CREATED_AT: SortKey("CREATED_AT", Product.created_at, "datetime"),
    ProductSortField.PRICE: SortKey("PRICE", Product.price, "decimal"),
    ProductSortField.NAME: SortKey("NAME", Product.name, "str"),
    ProductSortField.RATING: SortKey("RATING", Product.rating_average, "decimal"),
}
REVIEW_SORT_KEYS = {
    ReviewSortField.CREATED_AT: SortKey("CREATED_AT", Review.created_at, "datetime"),
    ReviewSortField.RATING: SortKey("RATING", Review.rating, "int"),
}
CATEGORY_ORDERING = Ordering(SortKey("NAME", Category.name, "str"), descending=False)


@dataclass(frozen=True, slots=True)
class ProductFilter:
    category_id: int | None = None
    search: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None


def _visible_products(principal: Principal) -> list[ColumnElement[bool]]:
    # Unpublished products exist only for staff.
    return [] if principal.is_staff else [Product.is_published.is_(True)]


def _product_conditions(principal: Principal, where: ProductFilter) -> list[ColumnElement[bool]]:
    conditions = _visible_products(principal)
    if where.category_id is not None:
        conditions.append(Product.category_id == where.category_id)
    if where.search:
        conditions.append(func.lower(Product.name).contains(where.search.lower(), autoescape=True))
    if where.min_price is not None:
        conditions.append(Product.price >= where.min_price)
    if where.max_price is not None:
        conditions.append(Product.price <= where.max_price)
    if where.in_stock is not None:
        conditions.append(Product.stock > 0 if where.in_stock else Product.stock == 0)
    return conditions


async def get_products_by_ids(session: AsyncSession, principal: Principal, ids: Sequence[int]) -> list[Product]:
    """Get the visible products among these ids, with their categories."""
    stmt = (
        select(Product).where(Product.id.in_(ids), *_visible_products(principal)).options(joinedload(Product.category))
    )
    return list((await session.scalars(stmt)).all())


async def get_product_by_slug(session: AsyncSession, principal: Principal, slug: str) -> Product | None:
    """Get a visible product by its slug."""
    stmt = select(Product).where(Product.slug == slug, *_visible_products(principal))
    return (await session.scalars(stmt)).one_or_none()


async def list_products(
    session: AsyncSession, principal: Principal, where: ProductFilter, ordering: Ordering, page: PageRequest
) -> Page[Product]:
    """List one keyset page of the visible products matching a filter, with their categories."""
    visible = select(Product).where(*_product_conditions(principal, where)).options(joinedload(Product.category))
    stmt = keyset_select(visible, ordering, Product.id, page)
    rows = (await session.scalars(stmt)).all()
    return to_page(rows, ordering, page, attribute_key(ordering))


async def count_products(session: AsyncSession, principal: Principal, where: ProductFilter) -> int:
    """Count the visible products matching a filter."""
    stmt = select(func.count()).select_from(Product).where(*_product_conditions(principal, where))
    return int((await session.execute(stmt)).scalar_one())


async def get_categories_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[Category]:
    """Get the categories among these ids."""
    return list((await session.scalars(select(Category).where(Category.id.in_(ids)))).all())


async def get_category_by_slug(session: AsyncSession, slug: str) -> Category | None:
    """Get a category by its slug."""
    return (await session.scalars(select(Category).where(Category.slug == slug))).one_or_none()


def _categories_under(parent_id: int | None, roots_only: bool) -> Select[Any]:
    stmt = select(Category)
    if parent_id is not None:
        return stmt.where(Category.parent_id == parent_id)
    return stmt.where(Category.parent_id.is_(None)) if roots_only else stmt


async def list_categories(
    session: AsyncSession, *, parent_id: int | None, roots_only: bool, page: PageRequest
) -> Page[Category]:
    """List one page of categories by name: all, the roots, or one category's children."""
    stmt = keyset_select(_categories_under(parent_id, roots_only), CATEGORY_ORDERING, Category.id, page)
    rows = (await session.scalars(stmt)).all()
    return to_page(rows, CATEGORY_ORDERING, page, attribute_key(CATEGORY_ORDERING))


async def count_categories(session: AsyncSession, *, parent_id: int | None, roots_only: bool) -> int:
    """Count the categories a `list_categories` call pages through."""
    stmt = select(func.count()).select_from(_categories_under(parent_id, roots_only).subquery())
    return int((await session.execute(stmt)).scalar_one())


async def list_children_by_parent_ids(session: AsyncSession, parent_ids: Sequence[int]) -> dict[int, list[Category]]:
    """List the direct subcategories of each category, by name."""
    stmt = select(Category).where(Category.parent_id.in_(parent_ids)).order_by(Category.name, Category.id)
    children: dict[int, list[Category]] = defaultdict(list)
    for category in (await session.scalars(stmt)).all():
        if category.parent_id is not None:
            children[category.parent_id].append(category)
    return children


def _visible_reviews(principal: Principal) -> Select[Review]:
    stmt = select(Review)
    if principal.is_staff:
        return stmt
    # A review is as visible as its product.
    return stmt.join(Product, Product.id == Review.product_id).where(Product.is_published.is_(True))


async def get_reviews_by_ids(session: AsyncSession, principal: Principal, ids: Sequence[int]) -> list[Review]:
    """Get the visible reviews among these ids."""
    return list((await session.scalars(_visible_reviews(principal).where(Review.id.in_(ids)))).all())


async def list_reviews_by_product_ids(
    session: AsyncSession, product_ids: Sequence[int], ordering: Ordering, page: PageRequest
) -> dict[int, list[Review]]:
    """List one page (plus a look-ahead row) of reviews for each product, with authors, in one statement."""
    stmt = select(Review).where(Review.product_id.in_(product_ids))
    window = keyset_window_select(stmt, Review, Review.product_id, ordering, Review.id, page, joined=("author",))
    by_product: dict[int, list[Review]] = defaultdict(list)
    for review in (await session.scalars(window)).all():
        by_product[review.product_id].append(review)
    return by_product


async def count_reviews_by_product_ids(session: AsyncSession, product_ids: Sequence[int]) -> dict[int, int]:
    """Count the reviews of each product."""
    stmt = select(Review.product_id, func.count()).where(Review.product_id.in_(product_ids)).group_by(Review.product_id)
    return {product_id: int(count) for product_id, count in (await session.execute(stmt)).all()}


async def list_reviews_by_user_ids(
    session: AsyncSession, principal: Principal, user_ids: Sequence[int], ordering: Ordering, page: PageRequest
) -> dict[int, list[Review]]:
    """List one page (plus a look-ahead row) of each user's visible reviews, with authors, in one statement."""
    stmt = _visible_reviews(principal).where(Review.user_id.in_(user_ids))
    window = keyset_window_select(stmt, Review, Review.user_id, ordering, Review.id, page, joined=("author",))
    by_user: dict[int, list[Review]] = defaultdict(list)
    for review in (await session.scalars(window)).all():
        by_user[review.user_id].append(review)
    return by_user


async def count_reviews_by_user_ids(
    session: AsyncSession, principal: Principal, user_ids: Sequence[int]
) -> dict[int, int]:
    """Count each user's visible reviews."""
    stmt = (
        _visible_reviews(principal)
        .with_only_columns(Review.user_id, func.count())
        .where(Review.user_id.in_(user_ids))
        .group_by(Review.user_id)
    )
    return {user_id: int(count) for user_id, count in (await session.execute(stmt)).all()}


async def refresh_product_ratings(session: AsyncSession, product_ids: Sequence[int] | None = None) -> None:
    """Recompute the denormalised review statistics of some products (all when no ids are given)."""
    count = select(func.count()).where(Review.product_id == Product.id).scalar_subquery()
    total = select(func.coalesce(func.sum(Review.rating), 0)).where(Review.product_id == Product.id).scalar_subquery()
    scope = [Product.id.in_(product_ids)] if product_ids is not None else []
    await session.execute(update(Product).where(*scope).values(rating_count=count, rating_sum=total))
    # Through NUMERIC so that round() exists on PostgreSQL and the stored value is the one the
    # cursors carry (three decimals) on every database.
    mean = cast(Product.rating_sum, Float) / func.nullif(Product.rating_count, 0)
    average = func.round(cast(mean, Numeric), 3)
    await session.execute(update(Product).where(*scope).values(rating_average=func.coalesce(average, 0)))
