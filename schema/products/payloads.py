"""Payloads of catalog and review mutations: the changed object (null on failure) and `userErrors`."""

import strawberry

from schema.errors import USER_ERRORS, UserError
from schema.products.types import Category, Product, Review


@strawberry.type(description="The result of `categoryCreate`.")
class CategoryCreatePayload:
    category: Category | None = strawberry.field(default=None, description="The new category; null when refused.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The result of `categoryUpdate`.")
class CategoryUpdatePayload:
    category: Category | None = strawberry.field(
        default=None, description="The category as changed; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The result of `categoryDelete`.")
class CategoryDeletePayload:
    deleted_category_id: strawberry.ID | None = strawberry.field(
        default=None, description="Global id of the deleted category, which no longer resolves; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The result of `productCreate`.")
class ProductCreatePayload:
    product: Product | None = strawberry.field(default=None, description="The new product; null when refused.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The result of `productUpdate`.")
class ProductUpdatePayload:
    product: Product | None = strawberry.field(default=None, description="The product as changed; null when refused.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The result of `productDelete`.")
class ProductDeletePayload:
    deleted_product_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Global id of the deleted product, which no longer resolves (nor do its reviews); "
        "null when refused.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The result of `productStockAdjust`.")
class ProductStockAdjustPayload:
    product: Product | None = strawberry.field(
        default=None, description="The product with its new stock; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The result of `reviewCreate`.")
class ReviewCreatePayload:
    review: Review | None = strawberry.field(
        default=None, description="The new review; its `product.rating` already counts it. Null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The result of `reviewDelete`.")
class ReviewDeletePayload:
    deleted_review_id: strawberry.ID | None = strawberry.field(
        default=None, description="Global id of the deleted review, which no longer resolves; null when refused."
    )
    product: Product | None = strawberry.field(
        default=None,
        description="The reviewed product with its rating recomputed; null when refused or when you cannot see it.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)
