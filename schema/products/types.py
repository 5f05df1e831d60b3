"""GraphQL types of the catalog: Category, Product, Review."""

from collections.abc import Sequence
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Optional, Self

import strawberry

from domains.common.keyset import Page, page_request
from domains.products import models
from domains.products import repository as products_repository
from schema.cache_control import (
    CATEGORY_MAX_AGE,
    INHERIT_MAX_AGE,
    PRIVATE,
    PRODUCT_MAX_AGE,
    REVIEW_MAX_AGE,
    CacheControl,
)
from schema.context import Info
from schema.loaders import AwaitableOrValue
from schema.products.inputs import DEFAULT_PRODUCT_ORDER, ProductFilter, ProductOrder, ReviewOrder, review_page
from schema.products.loaders import (
    CATEGORY_CHILDREN,
    CATEGORY_PARENT,
    PRODUCT_CATEGORY,
    PRODUCT_RELATIONS,
    PRODUCT_REVIEW_CARDS,
    PRODUCT_REVIEWS,
    PRODUCT_UNDATED_REVIEW_CARDS,
    REVIEW_AUTHOR,
    REVIEW_PRODUCT,
)
from schema.relations import Leaf, Narrower, One, PageOf, PageOfField, Reads, Related, Rows, warm_page
from schema.relay.connection import After, Before, Connection, First, Last
from schema.relay.node import Node, id_encoder
from schema.scalars import Money
from schema.users import types as users_types

if TYPE_CHECKING:
    from schema.users.types import User

UserRef = Annotated["User", strawberry.lazy("schema.users.types")]


# The compiled path reads a category's plain fields from its row (`Rows`), as `Category.from_model` makes them.
CATEGORY_ROWS = Rows(
    {
        "id": Leaf("id", id_encoder("Category")),
        "name": Leaf("name"),
        "slug": Leaf("slug"),
        "description": Leaf("description"),
    }
)
# Each relation field's resolver (schema/relations.py); a class defined further down is named in a lambda.
_CATEGORY_PARENT = CATEGORY_PARENT.resolver(
    key=lambda category: category.parent_id, convert=lambda row: Category.from_optional(row), rows=CATEGORY_ROWS
)
_CATEGORY_CHILDREN = CATEGORY_CHILDREN.resolver(
    key=lambda category: category.pk, convert=lambda row: Category.from_model(row)
)
# What a product's reviews field may select to be served by review cards (`models.ReviewCard`): every
# field but a review's title and product, and of its author the id and name; undated, neither the
# reviews' dates nor anything made of cursors (page info).
_UNDATED_REVIEW_CARD: Reads = {
    "__typename": None,
    "id": None,
    "rating": None,
    "body": None,
    "author": {"__typename": None, "id": None, "name": None},
}
_REVIEW_CARD: Reads = {**_UNDATED_REVIEW_CARD, "createdAt": None}
UNDATED_REVIEW_CARD_READS: Reads = {
    "__typename": None,
    "totalCount": None,
    "nodes": _UNDATED_REVIEW_CARD,
    "edges": {"__typename": None, "node": _UNDATED_REVIEW_CARD},
}
REVIEW_CARD_READS: Reads = {
    "__typename": None,
    "totalCount": None,
    "pageInfo": None,
    "nodes": _REVIEW_CARD,
    "edges": {"__typename": None, "cursor": None, "node": _REVIEW_CARD},
}


# The same fields, read by the compiled path straight from the cards (see `Rows`), as `Review.from_card` makes them.
UNDATED_REVIEW_CARD_ROWS = Rows(
    {
        "id": Leaf("id", id_encoder("Review")),
        "rating": Leaf("rating"),
        "body": Leaf("body"),
        "author": One(Rows({"id": Leaf("user_id", id_encoder("User")), "name": Leaf("author_name")})),
    }
)
REVIEW_CARD_ROWS = Rows({**UNDATED_REVIEW_CARD_ROWS.fields, "createdAt": Leaf("created_at")})


def _review_cards(
    relation: PageOf[models.ProductView, models.ReviewCard], rows: Rows, narrower: Narrower | None = None
) -> "PageOfField[models.ReviewCard, Review]":
    return relation.resolver(
        key=lambda product: product.pk,
        page=review_page,
        convert=lambda card: Review.from_card(card),
        narrower=narrower,
        rows=rows,
    )


_PRODUCT_REVIEWS = PRODUCT_REVIEWS.resolver(
    key=lambda product: product.pk,
    page=review_page,
    convert=lambda row: Review.from_model(row),
    narrower=Narrower(
        REVIEW_CARD_READS,
        _review_cards(
            PRODUCT_REVIEW_CARDS,
            REVIEW_CARD_ROWS,
            narrower=Narrower(
                UNDATED_REVIEW_CARD_READS, _review_cards(PRODUCT_UNDATED_REVIEW_CARDS, UNDATED_REVIEW_CARD_ROWS)
            ),
        ),
    ),
)
_REVIEW_AUTHOR = REVIEW_AUTHOR.resolver(
    key=lambda review: review.user_id,
    convert=lambda row: users_types.User.from_required(row),
    held=lambda review: review.held_author,
)
_REVIEW_PRODUCT = REVIEW_PRODUCT.resolver(
    key=lambda review: review.product_id, convert=lambda row: Product.from_required(row)
)


@strawberry.type(
    description="A node of the category tree. Public.", directives=[CacheControl(max_age=CATEGORY_MAX_AGE)]
)
class Category(Node):
    NODE_TYPE = "Category"

    pk: strawberry.Private[int]
    name: str = strawberry.field(description="Display name.")
    slug: str = strawberry.field(description="URL-safe unique name.")
    description: str = strawberry.field(description="Longer text; may be empty.")
    parent_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, row: models.CategoryView) -> Self:
        return cls(
            id=cls.global_id(row.id),
            pk=row.id,
            name=row.name,
            slug=row.slug,
            description=row.description,
            parent_id=row.parent_id,
        )

    @classmethod
    async def resolve_nodes(cls, info: Info, pks: Sequence[int]) -> list[Self | None]:
        rows = await info.context.loaders.products.category_by_id.load_many(pks)
        return [cls.from_optional(row) for row in rows]

    @strawberry.field(
        description="The enclosing category; null for a top-level category.",
        graphql_type=Optional["Category"],
        metadata=_CATEGORY_PARENT.metadata,
    )
    def parent(self, info: Info) -> AwaitableOrValue["Category | None"]:
        return _CATEGORY_PARENT.resolve(info.context.loaders, self)

    @strawberry.field(
        description="The direct subcategories, by name.",
        graphql_type=list["Category"],
        metadata=_CATEGORY_CHILDREN.metadata,
    )
    def children(self, info: Info) -> AwaitableOrValue[list["Category"]]:
        return _CATEGORY_CHILDREN.resolve(info.context.loaders, self)

    @strawberry.field(
        description="Products of this category (not of its subcategories); same filter and order as `products`."
    )
    async def products(
        self,
        info: Info,
        filter: Annotated[
            ProductFilter | None, strawberry.argument(description="Conditions; its `categoryId` is ignored here.")
        ] = None,
        order_by: Annotated[
            ProductOrder | None, strawberry.argument(description="Sort order; default newest first.")
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection["Product"]:
        where = (filter or ProductFilter()).to_filter(category_id=self.pk)
        rows = await Product.list_page(info, where, order_by, first=first, after=after, last=last, before=before)
        return Product.connection_of(info, where, rows)


# A product's fields as the compiled path reads them from its row (`Rows`), as `from_model` makes them;
# its category and reviews are its relations, keyed by the row's. Not its rating (an average of a count).
PRODUCT_ROWS = Rows(
    {
        "id": Leaf("id", id_encoder("Product")),
        "sku": Leaf("sku"),
        "name": Leaf("name"),
        "slug": Leaf("slug"),
        "description": Leaf("description"),
        "price": One(Rows({"amount": Leaf("price"), "currency": Leaf("currency")})),
        "inStock": Leaf("in_stock"),
        "createdAt": Leaf("created_at"),
        "updatedAt": Leaf("updated_at"),
        "stock": Leaf("stock"),
        "isPublished": Leaf("is_published"),
        "category": Related(attrgetter("category_id")),
        "reviews": Related(attrgetter("id")),
    }
)
_PRODUCT_CATEGORY = PRODUCT_CATEGORY.resolver(
    key=lambda product: product.category_id, convert=Category.from_optional, rows=CATEGORY_ROWS
)


@strawberry.type(description="Review statistics of a product.", directives=[INHERIT_MAX_AGE])
class ProductRating:
    average: float | None = strawberry.field(description="Mean rating from 1 to 5; null when there are no reviews.")
    count: int = strawberry.field(description="Number of reviews.")


@strawberry.type(
    description="Something the store sells. Unpublished products are visible to staff only.",
    directives=[CacheControl(max_age=PRODUCT_MAX_AGE)],
)
class Product(Node):
    NODE_TYPE = "Product"

    pk: strawberry.Private[int]
    sku: str = strawberry.field(description="Stock-keeping unit, unique.")
    name: str = strawberry.field(description="Display name.")
    slug: str = strawberry.field(description="URL-safe unique name.")
    description: str = strawberry.field(description="Longer text; may be empty.")
    price: Money = strawberry.field(description="Current unit price.")
    in_stock: bool = strawberry.field(description="Whether at least one unit can be ordered.")
    rating: ProductRating = strawberry.field(description="Review statistics.")
    created_at: datetime = strawberry.field(description="When the product was added.")
    updated_at: datetime = strawberry.field(description="When the product last changed.")
    category_id: strawberry.Private[int | None]
    stock: int | None = strawberry.field(
        description="Units in stock. Staff only; null for everyone else.", directives=[PRIVATE]
    )
    is_published: bool | None = strawberry.field(
        description="Whether customers can see the product. Staff only; null for everyone else (who see published "
        "products only).",
        directives=[PRIVATE],
    )

    @classmethod
    def from_model(cls, row: models.ProductView) -> Self:
        return cls(
            id=cls.global_id(row.id),
            pk=row.id,
            sku=row.sku,
            name=row.name,
            slug=row.slug,
            description=row.description,
            price=Money(amount=row.price, currency=row.currency),
            in_stock=row.in_stock,
            rating=ProductRating(
                average=float(row.rating_average) if row.rating_count else None, count=row.rating_count
            ),
            created_at=row.created_at,
            updated_at=row.updated_at,
            category_id=row.category_id,
            stock=row.stock,
            is_published=row.is_published,
        )

    @classmethod
    async def resolve_nodes(cls, info: Info, pks: Sequence[int]) -> list[Self | None]:
        rows = await info.context.loaders.products.product_by_id.load_many(pks)
        return [cls.from_optional(row) for row in rows]

    @classmethod
    async def list_page(
        cls,
        info: Info,
        where: products_repository.ProductFilter,
        order_by: ProductOrder | None,
        *,
        first: int | None,
        after: str | None,
        last: int | None,
        before: str | None,
    ) -> Page[models.ProductView]:
        """One keyset page of the products the caller may see, what the query selects below it readied."""
        ordering = order_by.to_ordering() if order_by else DEFAULT_PRODUCT_ORDER
        page = page_request(ordering, first=first, after=after, last=last, before=before)
        async with info.context.db.read() as session:
            rows = await products_repository.list_products(session, info.context.principal, where, ordering, page)
        await warm_page(info, rows.rows, PRODUCT_RELATIONS)
        return rows

    @classmethod
    def connection_of(
        cls, info: Info, where: products_repository.ProductFilter, rows: Page[models.ProductView]
    ) -> Connection["Product"]:
        """A page of `list_page` as its connection; the products `where` names are counted only when selected."""
        db, principal = info.context.db, info.context.principal

        async def count() -> int:
            async with db.read() as session:
                return await products_repository.count_products(session, principal, where)

        return Connection.from_page(rows, cls.from_model, count)

    @strawberry.field(
        description="The product's category; null when uncategorised.",
        graphql_type=Category | None,
        metadata=_PRODUCT_CATEGORY.metadata,
    )
    def category(self, info: Info) -> AwaitableOrValue[Category | None]:
        return _PRODUCT_CATEGORY.resolve(info.context.loaders, self)

    @strawberry.field(
        description="Reviews of this product; newest first unless ordered otherwise.",
        graphql_type=Connection["Review"],
        metadata=_PRODUCT_REVIEWS.metadata,
    )
    def reviews(
        self,
        info: Info,
        order_by: Annotated[
            ReviewOrder | None, strawberry.argument(description="Sort order; default newest first.")
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> AwaitableOrValue[Connection["Review"]]:
        return _PRODUCT_REVIEWS.resolve(
            info.context.loaders, self, order_by=order_by, first=first, after=after, last=last, before=before
        )


@strawberry.type(
    description="A customer's rating and opinion of a product; one per customer and product. Public.",
    directives=[CacheControl(max_age=REVIEW_MAX_AGE)],
)
class Review(Node):
    NODE_TYPE = "Review"

    pk: strawberry.Private[int]
    rating: int = strawberry.field(description="From 1 (worst) to 5 (best).")
    title: str = strawberry.field(description="Headline; may be empty.")
    body: str = strawberry.field(description="Text of the review; may be empty.")
    created_at: datetime = strawberry.field(description="When the review was written.")
    product_id: strawberry.Private[int]
    user_id: strawberry.Private[int]
    # Its author, when the review was made from a card (`from_card`): `author` loads nothing then.
    held_author: strawberry.Private[Optional["User"]] = None

    @classmethod
    def from_card(cls, card: models.ReviewCard) -> Self:
        """The review of a card, for a selection reading no more than `REVIEW_CARD_READS` (see `Narrower`).

        It has no title: reading one raises (and the compiled path hands the operation to graphql-core).
        """
        review = cls.__new__(cls)
        review.id = cls.global_id(card.id)
        review.pk = card.id
        review.rating = card.rating
        review.body = card.body
        if card.created_at is not None:  # an undated card's review has no date to read
            review.created_at = card.created_at
        review.product_id = card.product_id
        review.user_id = card.user_id
        review.held_author = users_types.User.from_card(card.user_id, card.author_name)
        return review

    @classmethod
    def from_model(cls, row: models.ReviewView) -> Self:
        return cls(
            id=cls.global_id(row.id),
            pk=row.id,
            rating=row.rating,
            title=row.title,
            body=row.body,
            created_at=row.created_at,
            product_id=row.product_id,
            user_id=row.user_id,
        )

    @classmethod
    async def resolve_nodes(cls, info: Info, pks: Sequence[int]) -> list[Self | None]:
        rows = await info.context.loaders.products.review_by_id.load_many(pks)
        return [cls.from_optional(row) for row in rows]

    @strawberry.field(description="Who wrote the review.", graphql_type=UserRef, metadata=_REVIEW_AUTHOR.metadata)
    def author(self, info: Info) -> AwaitableOrValue["User | None"] | None:
        return _REVIEW_AUTHOR.resolve(info.context.loaders, self)

    @strawberry.field(description="The reviewed product.", graphql_type=Product, metadata=_REVIEW_PRODUCT.metadata)
    def product(self, info: Info) -> AwaitableOrValue[Product | None] | None:
        return _REVIEW_PRODUCT.resolve(info.context.loaders, self)
