"""Use cases of the catalog (categories, products, stock) and of reviews.

Each write validates its whole input at once (every problem in one InvalidInputError) and records
its domain event in the same transaction.
"""

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, TypedDict

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.exceptions import ErrorCode, FieldProblem, ForbiddenError, InvalidInputError
from domains.common.ids import encode_global_id
from domains.common.outbox import record_event
from domains.common.principal import Principal, Role, require_role, require_user
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
CENT = Decimal("0.01")
SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
SKU_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9-]*")
SLUG_HINT = "Use lower-case letters and digits in words joined by single hyphens, e.g. winter-coats."
SKU_HINT = "Use upper-case letters, digits and hyphens, starting with a letter or digit."
PARENT_CYCLE = "A category cannot be moved under itself or one of its subcategories."


class CategoryFields(TypedDict, total=False):
    """A category's writable fields; an update carries only the ones it changes."""

    name: str
    slug: str
    description: str
    parent_id: int | None


class ProductFields(TypedDict, total=False):
    """A product's writable fields; an update carries only the ones it changes (stock: create only)."""

    sku: str
    name: str
    slug: str
    description: str
    price: Decimal
    stock: int
    category_id: int | None
    is_published: bool


@dataclass(frozen=True, slots=True)
class _TextRule:
    maximum: int
    required: bool = True
    pattern: re.Pattern[str] | None = None
    hint: str = ""


# Keyed by field name, which is the same here and in the GraphQL inputs (a problem's path).
_TEXT_RULES = {
    "name": _TextRule(NAME_MAX_LENGTH),
    "slug": _TextRule(SLUG_MAX_LENGTH, pattern=SLUG_PATTERN, hint=SLUG_HINT),
    "sku": _TextRule(SKU_MAX_LENGTH, pattern=SKU_PATTERN, hint=SKU_HINT),
    "description": _TextRule(DESCRIPTION_MAX_LENGTH, required=False),
    "title": _TextRule(REVIEW_TITLE_MAX_LENGTH, required=False),
    "body": _TextRule(REVIEW_BODY_MAX_LENGTH, required=False),
}
_TRIMMED = frozenset({"name", "slug", "sku", "title"})


def _cleaned(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value.strip() if key in _TRIMMED else value for key, value in fields.items()}


def _text_problems(key: str, value: str) -> list[FieldProblem]:
    rule, field = _TEXT_RULES[key], ("input", key)
    if rule.required and not value:
        return [FieldProblem(ErrorCode.REQUIRED, "Enter a value.", field)]
    if len(value) > rule.maximum:
        return [FieldProblem(ErrorCode.TOO_LONG, f"Use at most {rule.maximum} characters.", field)]
    if rule.pattern is not None and rule.pattern.fullmatch(value) is None:
        return [FieldProblem(ErrorCode.INVALID, rule.hint, field)]
    return []


def _value_problems(key: str, value: Any) -> list[FieldProblem]:
    if key == "price" and not (value.is_finite() and 0 <= value <= MAX_PRICE and value == value.quantize(CENT)):
        return [FieldProblem(ErrorCode.INVALID, f"Enter 0 to {MAX_PRICE} with at most two decimals.", ("input", key))]
    if key == "stock" and value < 0:
        return [FieldProblem(ErrorCode.INVALID, "Stock cannot be negative.", ("input", key))]
    if key == "rating" and not RATING_MIN <= value <= RATING_MAX:
        return [FieldProblem(ErrorCode.INVALID, f"Rate from {RATING_MIN} to {RATING_MAX}.", ("input", key))]
    return []


def _format_problems(fields: Mapping[str, Any]) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    for key, value in fields.items():
        problems += _text_problems(key, value) if key in _TEXT_RULES else _value_problems(key, value)
    return problems


Conflicts = Callable[[], Awaitable[list[FieldProblem]]]


async def _validate(fields: Mapping[str, Any], conflicts: Conflicts) -> None:
    # Format problems and conflicts with stored rows, all in one answer.
    problems = _format_problems(fields)
    problems += await conflicts()
    if problems:
        raise InvalidInputError(problems)


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


def _assign(row: Category | Product, fields: Mapping[str, Any]) -> Callable[[], None]:
    def write() -> None:
        for key, value in fields.items():
            setattr(row, key, value)

    return write


def _well_formed(fields: Mapping[str, Any], key: str) -> bool:
    return key in fields and not _text_problems(key, fields[key])


async def _category_conflicts(
    session: AsyncSession, fields: Mapping[str, Any], own_id: int | None
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if _well_formed(fields, "slug"):
        owner = await products_repository.get_category_id_by_slug(session, fields["slug"])
        if owner is not None and owner != own_id:
            problems.append(slug_taken(("input", "slug")))
    if fields.get("parent_id") is not None:
        lineage = await products_repository.list_category_ancestor_ids(session, fields["parent_id"])
        if not lineage:
            problems.append(category_missing(("input", "parentId")))
        elif own_id in lineage:
            problems.append(FieldProblem(ErrorCode.INVALID, PARENT_CYCLE, ("input", "parentId")))
    return problems


async def create_category(session: AsyncSession, principal: Principal, *, fields: CategoryFields) -> Category:
    """Create a category with a unique slug, at the top level or under an existing category."""
    require_role(principal, Role.STAFF)
    cleaned = _cleaned(fields)
    conflicts = partial(_category_conflicts, session, cleaned, None)
    await _validate(cleaned, conflicts)
    category = Category(**cleaned)
    await _write_unique(session, lambda: session.add(category), conflicts)
    record_event(session, "CategoryCreated", {"categoryId": encode_global_id("Category", category.id)})
    return category


async def update_category(
    session: AsyncSession, principal: Principal, *, category_id: int, changes: CategoryFields
) -> Category:
    """Change the given fields of a category; its slug stays unique and it never moves under itself."""
    require_role(principal, Role.STAFF)
    category = await products_repository.get_category(session, category_id)
    if category is None:
        raise CategoryNotFoundError
    fields = _cleaned(changes)
    conflicts = partial(_category_conflicts, session, fields, category_id)
    await _validate(fields, conflicts)
    await _write_unique(session, _assign(category, fields), conflicts)
    record_event(session, "CategoryUpdated", {"categoryId": encode_global_id("Category", category_id)})
    return category


async def delete_category(session: AsyncSession, principal: Principal, *, category_id: int) -> int:
    """Delete a category without subcategories or products; return its id."""
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
    session: AsyncSession, fields: Mapping[str, Any], own_id: int | None
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if _well_formed(fields, "sku"):
        owner = await products_repository.get_product_id_by_sku(session, fields["sku"])
        if owner is not None and owner != own_id:
            problems.append(sku_taken(("input", "sku")))
    if _well_formed(fields, "slug"):
        owner = await products_repository.get_product_id_by_slug(session, fields["slug"])
        if owner is not None and owner != own_id:
            problems.append(slug_taken(("input", "slug")))
    category_id = fields.get("category_id")
    if category_id is not None and not await products_repository.get_categories_by_ids(session, [category_id]):
        problems.append(category_missing(("input", "categoryId")))
    return problems


async def create_product(session: AsyncSession, principal: Principal, *, fields: ProductFields) -> Product:
    """Create a product with a unique SKU and slug, in an existing category or none."""
    require_role(principal, Role.STAFF)
    cleaned = _cleaned(fields)
    conflicts = partial(_product_conflicts, session, cleaned, None)
    await _validate(cleaned, conflicts)
    product = Product(**cleaned)
    await _write_unique(session, lambda: session.add(product), conflicts)
    record_event(session, "ProductCreated", {"productId": encode_global_id("Product", product.id)})
    return product


async def update_product(
    session: AsyncSession, principal: Principal, *, product_id: int, changes: ProductFields
) -> Product:
    """Change the given fields of a product; its SKU and slug stay unique."""
    require_role(principal, Role.STAFF)
    product = await products_repository.get_product(session, product_id)
    if product is None:
        raise ProductNotFoundError
    fields = _cleaned(changes)
    conflicts = partial(_product_conflicts, session, fields, product_id)
    await _validate(fields, conflicts)
    await _write_unique(session, _assign(product, fields), conflicts)
    record_event(session, "ProductUpdated", {"productId": encode_global_id("Product", product_id)})
    return product


async def delete_product(session: AsyncSession, principal: Principal, *, product_id: int) -> int:
    """Delete a product that no order names, with its reviews; return its id."""
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


async def adjust_product_stock(session: AsyncSession, principal: Principal, *, product_id: int, delta: int) -> Product:
    """Add `delta` (negative: remove) to a product's stock atomically; stock never drops below 0."""
    require_role(principal, Role.STAFF)
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
    session: AsyncSession, principal: Principal, product_id: int, user_id: int
) -> list[FieldProblem]:
    if not await products_repository.get_products_by_ids(session, principal, [product_id]):
        return [FieldProblem(ErrorCode.NOT_FOUND, NO_SUCH_PRODUCT, ("input", "productId"))]
    if await products_repository.get_review_id_by_author(session, product_id, user_id) is not None:
        return [review_exists()]
    return []


async def create_review(
    session: AsyncSession, principal: Principal, *, product_id: int, rating: int, title: str, body: str
) -> Review:
    """Review a product the principal can see, once per user and product; its rating statistics follow."""
    user_id = require_user(principal)
    fields = _cleaned({"rating": rating, "title": title, "body": body})
    conflicts = partial(_review_conflicts, session, principal, product_id, user_id)
    await _validate(fields, conflicts)
    review = Review(product_id=product_id, user_id=user_id, **fields)
    await _write_unique(session, lambda: session.add(review), conflicts)
    await products_repository.refresh_product_ratings(session, [product_id])
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
