"""Use cases of the catalog (categories, products, stock) and of reviews.

Each write first checks who asks (catalog writes: staff; reviews: a signed-in user), then takes
one typed input (`ProductCreate`, ...), validates it and its conflicts with stored rows at once
(every problem in one InvalidInputError), and records its domain event in the same transaction.
The input may come unchecked (`ProductCreate.model_construct(...)`, as the GraphQL layer builds it)
or checked (`ProductCreate(...)`, `validated(ProductCreate, data)`); the use case checks it again.
"""

from collections.abc import Awaitable, Callable
from decimal import Decimal
from functools import partial
from typing import Annotated, Any, TypeVar

from pydantic import Field, StringConstraints
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.exceptions import ErrorCode, FieldProblem, ForbiddenError, InvalidInputError
from domains.common.ids import encode_global_id
from domains.common.outbox import record_event
from domains.common.principal import Principal, Role, require_role, require_user
from domains.common.validation import FrozenInput, validated
from domains.products import repository as products_repository
from domains.products.exceptions import (
    NO_SUCH_PRODUCT,
    NOT_YOUR_REVIEW,
    CategoryInUseError,
    CategoryNotFoundError,
    InsufficientStockError,
    ProductNotFoundError,
    ProductOrderedError,
    ReviewNotFoundError,
    StockLimitError,
    category_missing,
    review_exists,
    sku_taken,
    slug_taken,
)
from domains.products.models import Category, Product, Review
from domains.products.repository import MAX_STOCK

NAME_MAX_LENGTH = 120
SLUG_MAX_LENGTH = 120
SKU_MAX_LENGTH = 64
DESCRIPTION_MAX_LENGTH = 5000
REVIEW_TITLE_MAX_LENGTH = 200
REVIEW_BODY_MAX_LENGTH = 5000
RATING_MIN, RATING_MAX = 1, 5
MAX_PRICE = Decimal("9999999999.99")  # the price column is NUMERIC(12, 2)
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
SKU_PATTERN = r"^[A-Z0-9][A-Z0-9-]*$"
SLUG_HINT = "Use lower-case letters and digits in words joined by single hyphens, e.g. winter-coats."
SKU_HINT = "Use upper-case letters, digits and hyphens, starting with a letter or digit."
PRICE_HINT = f"Enter 0 to {MAX_PRICE} with at most two decimals."
STOCK_HINT = "Stock cannot be negative."
RATING_HINT = f"Rate from {RATING_MIN} to {RATING_MAX}."
PARENT_CYCLE = "A category cannot be moved under itself or one of its subcategories."

# The rules of each value, checked by `validated`: lengths give REQUIRED or TOO_LONG, patterns and
# ranges INVALID with the field's description as the hint a form shows.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH)]
Slug = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=SLUG_MAX_LENGTH, pattern=SLUG_PATTERN),
    Field(description=SLUG_HINT),
]
Sku = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=SKU_MAX_LENGTH, pattern=SKU_PATTERN),
    Field(description=SKU_HINT),
]
Description = Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX_LENGTH)]
Price = Annotated[Decimal, Field(ge=0, le=MAX_PRICE, decimal_places=2, allow_inf_nan=False, description=PRICE_HINT)]
Stock = Annotated[int, Field(ge=0, description=STOCK_HINT)]
Rating = Annotated[int, Field(ge=RATING_MIN, le=RATING_MAX, description=RATING_HINT)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, max_length=REVIEW_TITLE_MAX_LENGTH)]
Body = Annotated[str, StringConstraints(max_length=REVIEW_BODY_MAX_LENGTH)]


class CategoryCreate(FrozenInput):
    """A new category: at the top level (no parent) or under an existing category."""

    name: Name
    slug: Slug
    description: Description = ""
    parent_id: int | None = None


class CategoryUpdate(FrozenInput):
    """Changes to a category: only the fields given change, and None keeps a value.

    A given `parent_id=None` moves the category to the top level.
    """

    category_id: int
    name: Name | None = None
    slug: Slug | None = None
    description: Description | None = None
    parent_id: int | None = None


class ProductCreate(FrozenInput):
    """A new product, in an existing category or none."""

    sku: Sku
    name: Name
    slug: Slug
    description: Description = ""
    price: Price
    stock: Stock = 0
    category_id: int | None = None
    is_published: bool = True


class ProductUpdate(FrozenInput):
    """Changes to a product: only the fields given change, and None keeps a value.

    A given `category_id=None` leaves the product without a category.
    """

    product_id: int
    sku: Sku | None = None
    name: Name | None = None
    slug: Slug | None = None
    description: Description | None = None
    price: Price | None = None
    is_published: bool | None = None
    category_id: int | None = None


class ProductStockAdjust(FrozenInput):
    """Units to add to a product's stock (negative: to remove)."""

    product_id: int
    delta: int


class ReviewCreate(FrozenInput):
    """A review of a product the author can see."""

    product_id: int
    rating: Rating
    title: Title = ""
    body: Body = ""


InputT = TypeVar("InputT", bound=FrozenInput)
Conflicts = Callable[[], Awaitable[list[FieldProblem]]]


def _given(data: FrozenInput) -> dict[str, Any]:
    # In declaration order, so that problems come in the order of the input's fields.
    return {name: getattr(data, name) for name in type(data).model_fields if name in data.model_fields_set}


async def _checked(
    data: InputT, conflicts: Callable[[InputT, frozenset[str]], Awaitable[list[FieldProblem]]]
) -> InputT:
    # The GraphQL layer hands inputs over unchecked (`model_construct`), so that problems of format
    # and conflicts with stored rows (a taken slug, an unknown category) come in one answer.
    problems: list[FieldProblem] = []
    try:
        checked = validated(type(data), _given(data))
    except InvalidInputError as exc:
        checked, problems = data, list(exc.problems)
    malformed = frozenset(problem.field[-1] for problem in problems if problem.field)
    problems += await conflicts(checked, malformed)
    if problems:
        raise InvalidInputError(problems)
    return checked


def _well_formed_text(data: FrozenInput, name: str, malformed: frozenset[str]) -> str | None:
    # The value a lookup of a unique text should use: none when absent or malformed, else trimmed
    # as validation trims it (an input whose other fields failed was not trimmed).
    value = getattr(data, name) if name in data.model_fields_set and name not in malformed else None
    return value.strip() if isinstance(value, str) else None


def _changes(data: FrozenInput, *, key: str, nullable: str) -> dict[str, Any]:
    # The fields to write: the given ones but the row's id; None keeps a value, except in the one
    # nullable field, where it means "none".
    given = _given(data)
    return {name: value for name, value in given.items() if name != key and (value is not None or name == nullable)}


async def _write_unique(session: AsyncSession, write: Callable[[], None], conflicts: Conflicts) -> None:
    try:
        # A savepoint: a concurrent write of the same unique value (slug, SKU, a user's review of a
        # product) fails here without ending the transaction; the conflicts then say which one.
        async with session.begin_nested():
            write()
    except IntegrityError as exc:
        problems = await conflicts()
        if not problems:
            raise
        raise InvalidInputError(problems) from exc


def _assign(row: Category | Product, fields: dict[str, Any]) -> Callable[[], None]:
    def write() -> None:
        for key, value in fields.items():
            setattr(row, key, value)

    return write


async def _category_conflicts(
    session: AsyncSession, own_id: int | None, data: CategoryCreate | CategoryUpdate, malformed: frozenset[str]
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    slug = _well_formed_text(data, "slug", malformed)
    if slug is not None:
        owner = await products_repository.get_category_by_slug(session, slug)
        if owner is not None and owner.id != own_id:
            problems.append(slug_taken(("input", "slug")))
    if data.parent_id is not None:
        lineage = await products_repository.list_category_ancestor_ids(session, data.parent_id)
        if not lineage:
            problems.append(category_missing(("input", "parentId")))
        elif own_id in lineage:
            problems.append(FieldProblem(ErrorCode.INVALID, PARENT_CYCLE, ("input", "parentId")))
    return problems


async def create_category(session: AsyncSession, principal: Principal, *, input: CategoryCreate) -> Category:
    """Create a category with a unique slug, at the top level or under an existing category (staff only)."""
    require_role(principal, Role.STAFF)
    conflicts = partial(_category_conflicts, session, None)
    data = await _checked(input, conflicts)
    category = Category(**data.model_dump())
    await _write_unique(session, lambda: session.add(category), partial(conflicts, data, frozenset()))
    record_event(session, "CategoryCreated", {"categoryId": encode_global_id("Category", category.id)})
    return category


async def update_category(session: AsyncSession, principal: Principal, *, input: CategoryUpdate) -> Category:
    """Change the given fields of a category (staff only); its slug stays unique and it never moves under itself."""
    require_role(principal, Role.STAFF)
    if input.parent_id is not None:
        # Two moves at once (A under B, B under A) would each find no cycle in the tree as it was
        # before the other: a move waits here until any other move has committed, then reads the tree.
        await products_repository.lock_category_tree(session)
    category = await products_repository.get_category(session, input.category_id)
    if category is None:
        raise CategoryNotFoundError
    conflicts = partial(_category_conflicts, session, category.id)
    data = await _checked(input, conflicts)
    changes = _changes(data, key="category_id", nullable="parent_id")
    await _write_unique(session, _assign(category, changes), partial(conflicts, data, frozenset()))
    record_event(session, "CategoryUpdated", {"categoryId": encode_global_id("Category", category.id)})
    return category


async def delete_category(session: AsyncSession, principal: Principal, *, category_id: int) -> int:
    """Delete a category without subcategories or products (staff only); return its id."""
    require_role(principal, Role.STAFF)
    category = await products_repository.get_category(session, category_id)
    if category is None:
        raise CategoryNotFoundError
    if await products_repository.count_category_references(session, category_id):
        raise CategoryInUseError
    try:
        async with session.begin_nested():
            await session.delete(category)
    except IntegrityError as exc:
        raise CategoryInUseError from exc  # a subcategory or product was added concurrently
    record_event(session, "CategoryDeleted", {"categoryId": encode_global_id("Category", category_id)})
    return category_id


async def _product_conflicts(
    session: AsyncSession, own_id: int | None, data: ProductCreate | ProductUpdate, malformed: frozenset[str]
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    sku = _well_formed_text(data, "sku", malformed)
    if sku is not None:
        owner = await products_repository.get_product_id_by_sku(session, sku)
        if owner is not None and owner != own_id:
            problems.append(sku_taken(("input", "sku")))
    slug = _well_formed_text(data, "slug", malformed)
    if slug is not None:
        owner = await products_repository.get_product_id_by_slug(session, slug)
        if owner is not None and owner != own_id:
            problems.append(slug_taken(("input", "slug")))
    category_id = data.category_id
    if category_id is not None and not await products_repository.get_categories_by_ids(session, [category_id]):
        problems.append(category_missing(("input", "categoryId")))
    return problems


async def create_product(session: AsyncSession, principal: Principal, *, input: ProductCreate) -> Product:
    """Create a product with a unique SKU and slug, in an existing category or none (staff only)."""
    require_role(principal, Role.STAFF)
    conflicts = partial(_product_conflicts, session, None)
    data = await _checked(input, conflicts)
    product = Product(**data.model_dump())
    await _write_unique(session, lambda: session.add(product), partial(conflicts, data, frozenset()))
    record_event(session, "ProductCreated", {"productId": encode_global_id("Product", product.id)})
    return product


async def update_product(session: AsyncSession, principal: Principal, *, input: ProductUpdate) -> Product:
    """Change the given fields of a product, publishing or unpublishing it (staff only); SKU and slug stay unique."""
    require_role(principal, Role.STAFF)
    product = await products_repository.get_product(session, input.product_id)
    if product is None:
        raise ProductNotFoundError
    conflicts = partial(_product_conflicts, session, product.id)
    data = await _checked(input, conflicts)
    changes = _changes(data, key="product_id", nullable="category_id")
    await _write_unique(session, _assign(product, changes), partial(conflicts, data, frozenset()))
    record_event(session, "ProductUpdated", {"productId": encode_global_id("Product", product.id)})
    return product


async def delete_product(session: AsyncSession, principal: Principal, *, product_id: int) -> int:
    """Delete a product that no order names, with its reviews (staff only); return its id."""
    require_role(principal, Role.STAFF)
    product = await products_repository.get_product(session, product_id)
    if product is None:
        raise ProductNotFoundError
    if await products_repository.count_order_items_of_product(session, product_id):
        raise ProductOrderedError
    try:
        async with session.begin_nested():
            await session.delete(product)
    except IntegrityError as exc:
        raise ProductOrderedError from exc  # an order for it was placed concurrently
    record_event(session, "ProductDeleted", {"productId": encode_global_id("Product", product_id)})
    return product_id


async def adjust_product_stock(session: AsyncSession, principal: Principal, *, input: ProductStockAdjust) -> Product:
    """Add `delta` (negative: remove) to a product's stock atomically (staff only); stock never drops below 0."""
    require_role(principal, Role.STAFF)
    product_id, delta = input.product_id, input.delta
    adjusted = await products_repository.adjust_product_stock(session, product_id, delta)
    product = await products_repository.get_product(session, product_id)
    if product is None:
        raise ProductNotFoundError
    if not adjusted:
        if product.stock + delta < 0:
            raise InsufficientStockError(product.stock)
        raise StockLimitError(MAX_STOCK)
    payload = {"productId": encode_global_id("Product", product_id), "delta": delta, "stock": product.stock}
    record_event(session, "ProductStockAdjusted", payload)
    return product


async def _review_conflicts(
    session: AsyncSession, principal: Principal, user_id: int, data: ReviewCreate, _malformed: frozenset[str]
) -> list[FieldProblem]:
    if not await products_repository.get_products_by_ids(session, principal, [data.product_id]):
        return [FieldProblem(ErrorCode.NOT_FOUND, NO_SUCH_PRODUCT, ("input", "productId"))]
    if await products_repository.get_review_id_by_author(session, data.product_id, user_id) is not None:
        return [review_exists()]
    return []


async def create_review(session: AsyncSession, principal: Principal, *, input: ReviewCreate) -> Review:
    """Review a product the principal can see, once per user and product (signed in only); its rating follows."""
    user_id = require_user(principal)
    conflicts = partial(_review_conflicts, session, principal, user_id)
    data = await _checked(input, conflicts)
    review = Review(user_id=user_id, **data.model_dump())
    await _write_unique(session, lambda: session.add(review), partial(conflicts, data, frozenset()))
    await products_repository.refresh_product_ratings(session, [data.product_id])
    record_event(session, "ReviewCreated", _review_event(review))
    return review


async def delete_review(session: AsyncSession, principal: Principal, *, review_id: int) -> Review:
    """Delete a review, as its author or staff; its product's rating statistics follow."""
    user_id = require_user(principal)
    review = await products_repository.get_removable_review(session, principal, review_id)
    if review is None:
        raise ReviewNotFoundError
    if review.user_id != user_id and not principal.is_staff:
        raise ForbiddenError(NOT_YOUR_REVIEW)
    await session.delete(review)
    await session.flush()
    await products_repository.refresh_product_ratings(session, [review.product_id])
    record_event(session, "ReviewDeleted", _review_event(review))
    return review


def _review_event(review: Review) -> dict[str, Any]:
    return {
        "reviewId": encode_global_id("Review", review.id),
        "productId": encode_global_id("Product", review.product_id),
    }
