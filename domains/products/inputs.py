"""GraphQL inputs of the catalog."""

from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry

from domains.common.ids import decode_typed_id
from domains.common.keyset import Ordering, PageRequest, page_request
from domains.products import repository as products_repository
from domains.products.repository import PRODUCT_SORT_KEYS, REVIEW_SORT_KEYS


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


DEFAULT_REVIEW_ORDER = Ordering(REVIEW_SORT_KEYS[products_repository.ReviewSortField.CREATED_AT], descending=True)


def review_page(
    order_by: ReviewOrder | None, *, first: int | None, after: str | None, last: int | None, before: str | None
) -> tuple[Ordering, PageRequest]:
    """Validate a reviews connection's arguments into its ordering and page."""
    ordering = order_by.to_ordering() if order_by else DEFAULT_REVIEW_ORDER
    return ordering, page_request(ordering, first=first, after=after, last=last, before=before)


def review_page_from_arguments(arguments: dict[str, Any]) -> tuple[Ordering, PageRequest]:
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
