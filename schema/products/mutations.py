"""Root mutation fields of the catalog and of reviews: translate the input, call the service, map the result.

After a write, the request's loaders forget (or are primed with) the rows it changed, so the
payload's nested fields never serve what an earlier field of the same request cached.
"""

from typing import Annotated

import strawberry

from domains.common.exceptions import DomainError
from domains.common.principal import Role
from domains.products import models
from domains.products import service as products_service
from schema.context import Info
from schema.errors import user_errors_from
from schema.permissions import requires
from schema.products.inputs import (
    CategoryCreateInput,
    CategoryDeleteInput,
    CategoryUpdateInput,
    ProductCreateInput,
    ProductDeleteInput,
    ProductStockAdjustInput,
    ProductUpdateInput,
    ReviewCreateInput,
    ReviewDeleteInput,
)
from schema.products.payloads import (
    CategoryCreatePayload,
    CategoryDeletePayload,
    CategoryUpdatePayload,
    ProductCreatePayload,
    ProductDeletePayload,
    ProductStockAdjustPayload,
    ProductUpdatePayload,
    ReviewCreatePayload,
    ReviewDeletePayload,
)
from schema.products.types import Category, Product, Review

INPUT = strawberry.argument(description="What to do; see the input type.")
STAFF = "Staff and admins only (others: FORBIDDEN; anonymous: UNAUTHENTICATED)."


def _category(info: Info, row: models.Category) -> Category:
    view = models.CategoryView(row.id, row.name, row.slug, row.description, row.parent_id)
    loaders = info.context.loaders.products
    loaders.category_by_id.clear(view.id).prime(view.id, view)
    loaders.categories_by_parent_id.clear_all()  # the old parent's and the new parent's children changed
    return Category.from_model(view)


def _forget_category(info: Info, category_id: int) -> None:
    loaders = info.context.loaders.products
    loaders.category_by_id.clear(category_id)
    loaders.categories_by_parent_id.clear_all()


async def _product(info: Info, product_id: int) -> Product | None:
    # Read again rather than built from the ORM row: `inStock`, the staff-only `stock` and the
    # category come with the read, and the loader then holds the row as written.
    row = await info.context.loaders.products.product_by_id.clear(product_id).load(product_id)
    return Product.from_optional(row)


def _forget_reviews(info: Info, *, product_id: int, user_id: int | None = None) -> None:
    loaders = info.context.loaders.products
    loaders.product_by_id.clear(product_id)  # its rating changed
    loaders.review_count_by_product_id.clear(product_id)
    # Page keys carry an ordering and a cursor, and a deleted product takes its reviewers' reviews
    # with it: forget every page and count rather than guess their keys.
    loaders.reviews_by_product_id.clear_all()
    loaders.reviews_by_user_id.clear_all()
    if user_id is None:
        loaders.review_by_id.clear_all()
        loaders.review_count_by_user_id.clear_all()
    else:
        loaders.review_count_by_user_id.clear(user_id)


def _review(info: Info, row: models.Review) -> Review:
    view = models.ReviewView(row.id, row.product_id, row.user_id, row.rating, row.title, row.body, row.created_at)
    info.context.loaders.products.review_by_id.clear(view.id).prime(view.id, view)
    _forget_reviews(info, product_id=row.product_id, user_id=row.user_id)
    return Review.from_model(view)


@strawberry.type
class ProductsMutation:
    @strawberry.mutation(
        description=f"Create a category. {STAFF} userErrors: REQUIRED, TOO_LONG, INVALID (slug format), "
        "ALREADY_EXISTS (slug), NOT_FOUND (parentId).",
        extensions=requires(Role.STAFF),
    )
    async def category_create(self, info: Info, input: Annotated[CategoryCreateInput, INPUT]) -> CategoryCreatePayload:
        try:
            async with info.context.db.transaction() as session:
                row = await products_service.create_category(session, info.context.principal, input=input.to_input())
        except DomainError as exc:
            return CategoryCreatePayload(user_errors=user_errors_from(exc))
        return CategoryCreatePayload(category=_category(info, row))

    @strawberry.mutation(
        description=f"Change a category's fields; only the fields given change. {STAFF} userErrors: NOT_FOUND "
        "(categoryId, parentId), REQUIRED, TOO_LONG, INVALID (slug format; parentId under itself), "
        "ALREADY_EXISTS (slug).",
        extensions=requires(Role.STAFF),
    )
    async def category_update(self, info: Info, input: Annotated[CategoryUpdateInput, INPUT]) -> CategoryUpdatePayload:
        try:
            async with info.context.db.transaction() as session:
                row = await products_service.update_category(session, info.context.principal, input=input.to_input())
        except DomainError as exc:
            return CategoryUpdatePayload(user_errors=user_errors_from(exc))
        return CategoryUpdatePayload(category=_category(info, row))

    @strawberry.mutation(
        description="Delete a category for good. Refused while it has subcategories or products: move or delete "
        f"them first. {STAFF} userErrors: NOT_FOUND, REFERENCED.",
        extensions=requires(Role.STAFF),
    )
    async def category_delete(self, info: Info, input: Annotated[CategoryDeleteInput, INPUT]) -> CategoryDeletePayload:
        try:
            async with info.context.db.transaction() as session:
                pk = await products_service.delete_category(
                    session, info.context.principal, category_id=input.to_category_id()
                )
        except DomainError as exc:
            return CategoryDeletePayload(user_errors=user_errors_from(exc))
        _forget_category(info, pk)
        return CategoryDeletePayload(deleted_category_id=Category.global_id(pk))

    @strawberry.mutation(
        description=f"Create a product. {STAFF} userErrors: REQUIRED, TOO_LONG, INVALID (sku or slug format, price, "
        "stock), ALREADY_EXISTS (sku, slug), NOT_FOUND (categoryId).",
        extensions=requires(Role.STAFF),
    )
    async def product_create(self, info: Info, input: Annotated[ProductCreateInput, INPUT]) -> ProductCreatePayload:
        try:
            async with info.context.db.transaction() as session:
                row = await products_service.create_product(session, info.context.principal, input=input.to_input())
        except DomainError as exc:
            return ProductCreatePayload(user_errors=user_errors_from(exc))
        return ProductCreatePayload(product=await _product(info, row.id))

    @strawberry.mutation(
        description="Change a product's fields; only the fields given change (stock: `productStockAdjust`). "
        f"{STAFF} userErrors: NOT_FOUND (productId, categoryId), REQUIRED, TOO_LONG, INVALID (sku or slug format, "
        "price), ALREADY_EXISTS (sku, slug).",
        extensions=requires(Role.STAFF),
    )
    async def product_update(self, info: Info, input: Annotated[ProductUpdateInput, INPUT]) -> ProductUpdatePayload:
        try:
            async with info.context.db.transaction() as session:
                row = await products_service.update_product(session, info.context.principal, input=input.to_input())
        except DomainError as exc:
            return ProductUpdatePayload(user_errors=user_errors_from(exc))
        return ProductUpdatePayload(product=await _product(info, row.id))

    @strawberry.mutation(
        description="Delete a product for good, with its reviews. Refused once any order names it: unpublish it "
        f"instead (`productUpdate` with `isPublished: false`). {STAFF} userErrors: NOT_FOUND, REFERENCED.",
        extensions=requires(Role.STAFF),
    )
    async def product_delete(self, info: Info, input: Annotated[ProductDeleteInput, INPUT]) -> ProductDeletePayload:
        try:
            async with info.context.db.transaction() as session:
                pk = await products_service.delete_product(
                    session, info.context.principal, product_id=input.to_product_id()
                )
        except DomainError as exc:
            return ProductDeletePayload(user_errors=user_errors_from(exc))
        _forget_reviews(info, product_id=pk)
        return ProductDeletePayload(deleted_product_id=Product.global_id(pk))

    @strawberry.mutation(
        description="Add units to a product's stock or remove them, in one atomic step that never takes stock "
        f"below 0, also under concurrent orders. {STAFF} userErrors: NOT_FOUND, OUT_OF_STOCK (delta), "
        "INVALID (delta would take stock past 2147483647).",
        extensions=requires(Role.STAFF),
    )
    async def product_stock_adjust(
        self, info: Info, input: Annotated[ProductStockAdjustInput, INPUT]
    ) -> ProductStockAdjustPayload:
        try:
            async with info.context.db.transaction() as session:
                row = await products_service.adjust_product_stock(
                    session, info.context.principal, input=input.to_input()
                )
        except DomainError as exc:
            return ProductStockAdjustPayload(user_errors=user_errors_from(exc))
        return ProductStockAdjustPayload(product=await _product(info, row.id))

    @strawberry.mutation(
        description="Review a product you can see; one review per user and product. The product's rating counts "
        "it at once. Customers (and staff, admins) only; anonymous: UNAUTHENTICATED. userErrors: NOT_FOUND "
        "(productId), ALREADY_EXISTS (productId), INVALID (rating), TOO_LONG (title, body).",
        extensions=requires(Role.CUSTOMER),
    )
    async def review_create(self, info: Info, input: Annotated[ReviewCreateInput, INPUT]) -> ReviewCreatePayload:
        try:
            async with info.context.db.transaction() as session:
                row = await products_service.create_review(session, info.context.principal, input=input.to_input())
        except DomainError as exc:
            return ReviewCreatePayload(user_errors=user_errors_from(exc))
        return ReviewCreatePayload(review=_review(info, row))

    @strawberry.mutation(
        description="Delete a review for good; the product's rating drops it at once. Its author or staff only: "
        "anyone else signed in gets FORBIDDEN, anonymous UNAUTHENTICATED. userErrors: NOT_FOUND.",
        extensions=requires(),
    )
    async def review_delete(self, info: Info, input: Annotated[ReviewDeleteInput, INPUT]) -> ReviewDeletePayload:
        try:
            async with info.context.db.transaction() as session:
                row = await products_service.delete_review(
                    session, info.context.principal, review_id=input.to_review_id()
                )
        except DomainError as exc:
            return ReviewDeletePayload(user_errors=user_errors_from(exc))
        info.context.loaders.products.review_by_id.clear(row.id)
        _forget_reviews(info, product_id=row.product_id, user_id=row.user_id)
        product = await _product(info, row.product_id)
        return ReviewDeletePayload(deleted_review_id=Review.global_id(row.id), product=product)
