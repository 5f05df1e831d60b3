"""Warm the catalog loaders for what a query selects below a page of products or reviews.

See domains/common/lookahead.py for why: one batched load per relation here saves one
awaitable per object in the nested resolvers.
"""

from collections.abc import Sequence

from strawberry.types.nodes import Selection

from domains.common.exceptions import BadUserInputError
from domains.products import models
from schema.context import Info
from schema.lookahead import connection_nodes, named
from schema.products.inputs import review_page_from_arguments
from schema.products.loaders import hand_on_categories


async def prefetch_products(info: Info, rows: Sequence[models.ProductView], selected: Sequence[Selection]) -> None:
    """Load, in one batch per relation, what `selected` asks of these products."""
    if not rows or not selected:
        return
    loaders = info.context.loaders.products
    categories = named(selected, "category")
    if categories:
        hand_on_categories(loaders.category_by_id, rows)
        found = await loaders.category_by_id.load_many(sorted({r.category_id for r in rows if r.category_id}))
        if named([s for field in categories for s in field.selections], "parent"):
            await loaders.category_by_id.load_many(sorted({c.parent_id for c in found if c and c.parent_id}))
    for field in named(selected, "reviews"):
        try:
            ordering, page = review_page_from_arguments(field.arguments)
        except (BadUserInputError, KeyError, TypeError, ValueError):
            continue  # the field's own resolver reports bad arguments, at the field's path
        pages = await loaders.reviews_by_product_id.load_many([(row.id, ordering, page) for row in rows])
        reviews = [review for p in pages for review in p.rows]
        await prefetch_reviews(info, reviews, connection_nodes(field.selections))
        if named(field.selections, "totalCount"):
            await loaders.review_count_by_product_id.load_many([row.id for row in rows])


async def prefetch_reviews(info: Info, rows: Sequence[models.ReviewView], selected: Sequence[Selection]) -> None:
    """Load, in one batch per relation, what `selected` asks of these reviews."""
    if not rows or not selected:
        return
    if named(selected, "author"):
        await info.context.loaders.users.user_by_id.load_many(sorted({row.user_id for row in rows}))
    if named(selected, "product"):
        await info.context.loaders.products.product_by_id.load_many(sorted({row.product_id for row in rows}))
