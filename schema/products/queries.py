"""Root query fields of the catalog."""

from typing import Annotated

import strawberry

from domains.common.exceptions import BadUserInputError
from domains.common.ids import decode_typed_id
from domains.common.keyset import Page, page_request
from domains.products import repository as products_repository
from domains.products.models import ProductView
from domains.products.repository import CATEGORY_ORDERING
from schema.cache_control import CATEGORY_MAX_AGE, PRODUCT_MAX_AGE, CacheControl
from schema.context import Info
from schema.products.inputs import ProductFilter, ProductOrder
from schema.products.types import PRODUCT_ROWS, Category, Product
from schema.relations import RowsOf, page_rows
from schema.relay.connection import After, Before, Connection, First, Last

ONE_OF_ID_OR_SLUG = "Pass exactly one of `id` and `slug`."

NodeIdArg = Annotated[strawberry.ID | None, strawberry.argument(description="Global id.")]
SlugArg = Annotated[str | None, strawberry.argument(description="Unique slug.")]


def _one_of(id_: strawberry.ID | None, slug: str | None) -> None:
    if (id_ is None) == (slug is None):
        raise BadUserInputError(ONE_OF_ID_OR_SLUG)


async def _product_rows(
    info: Info,
    filter: ProductFilter | None = None,
    order_by: ProductOrder | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Page[ProductView]:
    """`products` for the compiled path: the page of rows its edges and nodes are read from (`RowsOf`)."""
    where = (filter or ProductFilter()).to_filter()
    return await Product.list_page(info, where, order_by, first=first, after=after, last=last, before=before)


PRODUCT_PAGE = RowsOf(_product_rows, page_rows(PRODUCT_ROWS))


@strawberry.type
class ProductsQuery:
    # A connection has no maxAge of its own (it follows its field), so the list fields say it; `product`
    # and `category` take their type's.
    @strawberry.field(
        description="The catalog, filtered and sorted; unpublished products only for staff.",
        directives=[CacheControl(max_age=PRODUCT_MAX_AGE)],
        metadata=PRODUCT_PAGE.metadata,
    )
    async def products(
        self,
        info: Info,
        filter: Annotated[
            ProductFilter | None, strawberry.argument(description="Conditions every product must meet.")
        ] = None,
        order_by: Annotated[
            ProductOrder | None, strawberry.argument(description="Sort order; default newest first.")
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Product]:
        where = (filter or ProductFilter()).to_filter()
        rows = await Product.list_page(info, where, order_by, first=first, after=after, last=last, before=before)
        return Product.connection_of(info, where, rows)

    @strawberry.field(description="One product by id or slug; null when it does not exist or is not visible.")
    async def product(self, info: Info, id: NodeIdArg = None, slug: SlugArg = None) -> Product | None:
        _one_of(id, slug)
        if id is not None:
            row = await info.context.loaders.products.product_by_id.load(decode_typed_id(id, "Product"))
        else:
            async with info.context.db.read() as session:
                row = await products_repository.get_product_by_slug(session, info.context.principal, slug or "")
        return Product.from_optional(row)

    @strawberry.field(
        description="Categories by name: all of them, the top level, or one category's children.",
        directives=[CacheControl(max_age=CATEGORY_MAX_AGE)],
    )
    async def categories(
        self,
        info: Info,
        parent_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only the direct subcategories of this category.")
        ] = None,
        top_level_only: Annotated[
            bool, strawberry.argument(description="Only categories without a parent (ignored with `parentId`).")
        ] = False,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Category]:
        page = page_request(CATEGORY_ORDERING, first=first, after=after, last=last, before=before)
        parent_pk = decode_typed_id(parent_id, "Category") if parent_id is not None else None
        db = info.context.db
        async with db.read() as session:
            rows = await products_repository.list_categories(
                session, parent_id=parent_pk, roots_only=top_level_only, page=page
            )

        async def count() -> int:
            async with db.read() as session:
                return await products_repository.count_categories(
                    session, parent_id=parent_pk, roots_only=top_level_only
                )

        return Connection.from_page(rows, Category.from_model, count)

    @strawberry.field(description="One category by id or slug; null when it does not exist.")
    async def category(self, info: Info, id: NodeIdArg = None, slug: SlugArg = None) -> Category | None:
        _one_of(id, slug)
        if id is not None:
            row = await info.context.loaders.products.category_by_id.load(decode_typed_id(id, "Category"))
        else:
            async with info.context.db.read() as session:
                row = await products_repository.get_category_by_slug(session, slug or "")
        return Category.from_optional(row)
