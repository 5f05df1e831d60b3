"""GraphQL inputs of the catalog: list arguments, and the inputs of catalog and review mutations."""

from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry

from domains.common.ids import decode_typed_id
from domains.common.keyset import Ordering, PageRequest, page_request
from domains.products import repository as products_repository
from domains.products import service as products_service
from domains.products.repository import PRODUCT_SORT_KEYS, REVIEW_SORT_KEYS
from domains.products.service import (
    DESCRIPTION_MAX_LENGTH,
    MAX_PRICE,
    NAME_MAX_LENGTH,
    RATING_MAX,
    RATING_MIN,
    REVIEW_BODY_MAX_LENGTH,
    REVIEW_TITLE_MAX_LENGTH,
    SKU_MAX_LENGTH,
    SLUG_MAX_LENGTH,
)

SLUG_RULES = (
    "lower-case letters and digits in words joined by single hyphens (e.g. `winter-coats`), "
    f"at most {SLUG_MAX_LENGTH} characters"
)
SKU_RULES = (
    f"upper-case letters, digits and hyphens, starting with a letter or digit, at most {SKU_MAX_LENGTH} characters"
)
PRICE_RULES = f'in USD, 0 to {MAX_PRICE} with at most two decimals, e.g. "19.90"'
KEEP = "Omit (or null) to keep the current value."


@strawberry.enum(description="Sort direction.")
class OrderDirection(Enum):
    ASC = strawberry.enum_value("ASC", description="Ascending: smallest, oldest or A first.")
    DESC = strawberry.enum_value("DESC", description="Descending: largest, newest or Z first.")


@strawberry.enum(description="What products can be sorted by.")
class ProductOrderField(Enum):
    CREATED_AT = strawberry.enum_value("CREATED_AT", description="When the product was added.")
    PRICE = strawberry.enum_value("PRICE", description="Current price.")
    NAME = strawberry.enum_value("NAME", description="Product name.")
    RATING = strawberry.enum_value("RATING", description="Average review rating; unrated products count as 0.")


@strawberry.enum(description="What reviews can be sorted by.")
class ReviewOrderField(Enum):
    CREATED_AT = strawberry.enum_value("CREATED_AT", description="When the review was written.")
    RATING = strawberry.enum_value("RATING", description="The review's rating.")


@strawberry.input(description="Sort order of a product list; ties are broken by id.")
class ProductOrder:
    field: ProductOrderField = strawberry.field(description="The key to sort by.")
    direction: OrderDirection = strawberry.field(default=OrderDirection.ASC, description="Sort direction.")

    def to_ordering(self) -> Ordering:
        key = PRODUCT_SORT_KEYS[products_repository.ProductSortField[self.field.name]]
        return Ordering(key, descending=self.direction is OrderDirection.DESC)


DEFAULT_PRODUCT_ORDER = Ordering(PRODUCT_SORT_KEYS[products_repository.ProductSortField.CREATED_AT], descending=True)


@strawberry.input(description="Sort order of a review list; ties are broken by id.")
class ReviewOrder:
    field: ReviewOrderField = strawberry.field(description="The key to sort by.")
    direction: OrderDirection = strawberry.field(default=OrderDirection.DESC, description="Sort direction.")

    def to_ordering(self) -> Ordering:
        key = REVIEW_SORT_KEYS[products_repository.ReviewSortField[self.field.name]]
        return Ordering(key, descending=self.direction is OrderDirection.DESC)


DEFAULT_REVIEW_ORDER = products_repository.NEWEST_REVIEWS_FIRST


def review_page(
    order_by: ReviewOrder | None = None,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> tuple[Ordering, PageRequest]:
    """Validate a reviews connection's arguments into its ordering and page."""
    ordering = order_by.to_ordering() if order_by else DEFAULT_REVIEW_ORDER
    return ordering, page_request(ordering, first=first, after=after, last=last, before=before)


def review_page_from_arguments(arguments: Mapping[str, Any]) -> tuple[Ordering, PageRequest]:
    """The same, from the raw arguments a look-ahead sees (GraphQL names, enum values as strings)."""
    raw_order = arguments.get("orderBy")
    order_by = (
        ReviewOrder(
            field=ReviewOrderField(raw_order["field"]),
            direction=OrderDirection(raw_order.get("direction", OrderDirection.DESC.value)),
        )
        if raw_order
        else None
    )
    return review_page(
        order_by,
        first=_int_or_none(arguments.get("first")),
        after=arguments.get("after"),
        last=_int_or_none(arguments.get("last")),
        before=arguments.get("before"),
    )


def _int_or_none(value: object) -> int | None:
    # Literals arrive as their source text ("5"); variables arrive already coerced (5).
    return None if value is None else int(str(value))


@strawberry.input(description="Conditions a product must meet; all given conditions apply.")
class ProductFilter:
    category_id: strawberry.ID | None = strawberry.field(default=None, description="Only products of this category.")
    search: str | None = strawberry.field(
        default=None, description="Only products whose name contains this text, ignoring case."
    )
    min_price: Decimal | None = strawberry.field(default=None, description="Only products at this price or above.")
    max_price: Decimal | None = strawberry.field(default=None, description="Only products at this price or below.")
    in_stock: bool | None = strawberry.field(
        default=None, description="true: only products in stock; false: only sold-out products."
    )

    def to_filter(self, *, category_id: int | None = None) -> products_repository.ProductFilter:
        if category_id is None and self.category_id is not None:
            category_id = decode_typed_id(self.category_id, "Category")
        return products_repository.ProductFilter(
            category_id=category_id,
            search=self.search,
            min_price=self.min_price,
            max_price=self.max_price,
            in_stock=self.in_stock,
        )


# Inputs of the catalog and review mutations. In an update input an omitted (or null) field keeps
# its stored value; `parentId` and `categoryId` alone give null a meaning of its own, so they are
# handed over only when given. Each becomes the service's typed input unchecked (`model_construct`):
# the service validates it, so that format problems and conflicts with stored rows come in one answer.


def _optional_pk(value: strawberry.ID | None, type_name: str) -> int | None:
    return decode_typed_id(value, type_name) if value is not None else None


@strawberry.input(description="A new category.")
class CategoryCreateInput:
    name: str = strawberry.field(description=f"Display name, 1 to {NAME_MAX_LENGTH} characters.")
    slug: str = strawberry.field(description=f"URL-safe name, unique among categories: {SLUG_RULES}.")
    description: str = strawberry.field(
        default="", description=f"Longer text, at most {DESCRIPTION_MAX_LENGTH} characters; default empty."
    )
    parent_id: strawberry.ID | None = strawberry.field(
        default=None, description="Global id of the enclosing category; omit or null for a top-level category."
    )

    def to_input(self) -> products_service.CategoryCreate:
        return products_service.CategoryCreate.model_construct(
            name=self.name,
            slug=self.slug,
            description=self.description,
            parent_id=_optional_pk(self.parent_id, "Category"),
        )


@strawberry.input(description="Changes to a category; only the fields given change.")
class CategoryUpdateInput:
    category_id: strawberry.ID = strawberry.field(description="Global id of the category to change.")
    name: str | None = strawberry.field(
        default=None, description=f"New display name, 1 to {NAME_MAX_LENGTH} characters. {KEEP}"
    )
    slug: str | None = strawberry.field(default=None, description=f"New unique slug: {SLUG_RULES}. {KEEP}")
    description: str | None = strawberry.field(
        default=None, description=f"New longer text, at most {DESCRIPTION_MAX_LENGTH} characters. {KEEP}"
    )
    parent_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="Global id of the new enclosing category (not the category itself nor one of its "
        "subcategories); null moves it to the top level; omit to keep.",
    )

    def to_input(self) -> products_service.CategoryUpdate:
        changes = products_service.CategoryUpdate.model_construct(
            category_id=decode_typed_id(self.category_id, "Category"),
            name=self.name,
            slug=self.slug,
            description=self.description,
        )
        if self.parent_id is strawberry.UNSET:
            return changes
        return changes.model_copy(update={"parent_id": _optional_pk(self.parent_id, "Category")})


@strawberry.input(description="The category to delete.")
class CategoryDeleteInput:
    category_id: strawberry.ID = strawberry.field(
        description="Global id of a category without subcategories and products."
    )

    def to_category_id(self) -> int:
        return decode_typed_id(self.category_id, "Category")


@strawberry.input(description="A new product.")
class ProductCreateInput:
    sku: str = strawberry.field(description=f"Stock-keeping unit, unique: {SKU_RULES}.")
    name: str = strawberry.field(description=f"Display name, 1 to {NAME_MAX_LENGTH} characters.")
    slug: str = strawberry.field(description=f"URL-safe name, unique among products: {SLUG_RULES}.")
    price: Decimal = strawberry.field(description=f"Unit price {PRICE_RULES}.")
    description: str = strawberry.field(
        default="", description=f"Longer text, at most {DESCRIPTION_MAX_LENGTH} characters; default empty."
    )
    stock: int = strawberry.field(default=0, description="Units in stock, 0 or more; default 0.")
    category_id: strawberry.ID | None = strawberry.field(
        default=None, description="Global id of its category; omit or null for an uncategorised product."
    )
    is_published: bool = strawberry.field(
        default=True, description="Whether customers can see it; default true. Unpublished: staff only."
    )

    def to_input(self) -> products_service.ProductCreate:
        return products_service.ProductCreate.model_construct(
            sku=self.sku,
            name=self.name,
            slug=self.slug,
            description=self.description,
            price=self.price,
            stock=self.stock,
            category_id=_optional_pk(self.category_id, "Category"),
            is_published=self.is_published,
        )


@strawberry.input(description="Changes to a product; only the fields given change. Stock: `productStockAdjust`.")
class ProductUpdateInput:
    product_id: strawberry.ID = strawberry.field(description="Global id of the product to change.")
    sku: str | None = strawberry.field(default=None, description=f"New unique SKU: {SKU_RULES}. {KEEP}")
    name: str | None = strawberry.field(
        default=None, description=f"New display name, 1 to {NAME_MAX_LENGTH} characters. {KEEP}"
    )
    slug: str | None = strawberry.field(default=None, description=f"New unique slug: {SLUG_RULES}. {KEEP}")
    description: str | None = strawberry.field(
        default=None, description=f"New longer text, at most {DESCRIPTION_MAX_LENGTH} characters. {KEEP}"
    )
    price: Decimal | None = strawberry.field(default=None, description=f"New unit price {PRICE_RULES}. {KEEP}")
    category_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="Global id of its new category; null makes it uncategorised; omit to keep.",
    )
    is_published: bool | None = strawberry.field(
        default=None, description=f"Whether customers can see it (false: staff only). {KEEP}"
    )

    def to_input(self) -> products_service.ProductUpdate:
        changes = products_service.ProductUpdate.model_construct(
            product_id=decode_typed_id(self.product_id, "Product"),
            sku=self.sku,
            name=self.name,
            slug=self.slug,
            description=self.description,
            price=self.price,
            is_published=self.is_published,
        )
        if self.category_id is strawberry.UNSET:
            return changes
        return changes.model_copy(update={"category_id": _optional_pk(self.category_id, "Category")})


@strawberry.input(description="The product to delete.")
class ProductDeleteInput:
    product_id: strawberry.ID = strawberry.field(description="Global id of a product that no order names.")

    def to_product_id(self) -> int:
        return decode_typed_id(self.product_id, "Product")


@strawberry.input(description="A change to a product's stock.")
class ProductStockAdjustInput:
    product_id: strawberry.ID = strawberry.field(description="Global id of the product.")
    delta: int = strawberry.field(
        description="Units to add (positive) or remove (negative); stock never drops below 0."
    )

    def to_input(self) -> products_service.ProductStockAdjust:
        return products_service.ProductStockAdjust.model_construct(
            product_id=decode_typed_id(self.product_id, "Product"), delta=self.delta
        )


@strawberry.input(description="A review of a product.")
class ReviewCreateInput:
    product_id: strawberry.ID = strawberry.field(
        description="Global id of a product you can see and have not reviewed yet."
    )
    rating: int = strawberry.field(description=f"From {RATING_MIN} (worst) to {RATING_MAX} (best).")
    title: str = strawberry.field(
        default="", description=f"Headline, at most {REVIEW_TITLE_MAX_LENGTH} characters; default empty."
    )
    body: str = strawberry.field(
        default="", description=f"Text of the review, at most {REVIEW_BODY_MAX_LENGTH} characters; default empty."
    )

    def to_input(self) -> products_service.ReviewCreate:
        return products_service.ReviewCreate.model_construct(
            product_id=decode_typed_id(self.product_id, "Product"), rating=self.rating, title=self.title, body=self.body
        )


@strawberry.input(description="The review to delete.")
class ReviewDeleteInput:
    review_id: strawberry.ID = strawberry.field(description="Global id of your review (staff: any review).")

    def to_review_id(self) -> int:
        return decode_typed_id(self.review_id, "Review")
