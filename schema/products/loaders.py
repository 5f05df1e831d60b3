"""Per-request loaders of the catalog, and the relations that go through them.

Every nested catalog field resolves through one relation declared here (see schema/relations.py):
its loader, the rows its parent's statement joins, and what the look-ahead warms below it.
"""

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Self

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.keyset import Ordering, Page, PageRequest, attribute_key
from domains.common.principal import Principal
from domains.products import models
from domains.products import repository as products_repository
from domains.users.models import UserView
from schema.loaders import (
    ChildrenByParentLoader,
    CountByParentLoader,
    PageByParentLoader,
    PageKey,
    RowByKeyLoader,
)
from schema.products.inputs import review_page_from_arguments
from schema.relations import PageOf, ToMany, ToOne, in_order
from schema.unit_of_work import RequestDb

if TYPE_CHECKING:
    from schema.context import Loaders


class ProductByIdLoader(RowByKeyLoader[int, models.ProductView]):
    pass


class CategoryByIdLoader(RowByKeyLoader[int, models.CategoryView]):
    pass


class ReviewByIdLoader(RowByKeyLoader[int, models.ReviewView]):
    pass


class CategoriesByParentIdLoader(ChildrenByParentLoader[models.CategoryView]):
    pass


class ReviewsByProductIdLoader(PageByParentLoader[models.ReviewView]):
    pass


class ReviewCardsByProductIdLoader(PageByParentLoader[models.ReviewCard]):
    pass


class ReviewCountByProductIdLoader(CountByParentLoader):
    pass


class ReviewsByUserIdLoader(PageByParentLoader[models.ReviewView]):
    pass


class ReviewCountByUserIdLoader(CountByParentLoader):
    pass


def _all(pages: dict[int, list[models.ReviewView]]) -> list[models.ReviewView]:
    return [review for page in pages.values() for review in page]


class ProductsLoaders:
    """The catalog's loaders of one request, each built on first use (a ProductById touches two of eight).

    Rows joined by a statement (a product's category, a review's author) are handed on to
    the loader of their own type, so asking for them next costs no statement.
    """

    def __init__(self, db: RequestDb, principal: Principal, user_by_id: DataLoader[int, UserView | None]) -> None:
        self._db = db
        self._principal = principal
        self._user_by_id = user_by_id

    @classmethod
    def create(cls, db: RequestDb, principal: Principal, user_by_id: DataLoader[int, UserView | None]) -> Self:
        """The loaders of one request (they capture its event loop and principal)."""
        return cls(db, principal, user_by_id)

    @cached_property
    def product_by_id(self) -> ProductByIdLoader:
        principal, category_by_id = self._principal, self.category_by_id

        async def products(session: AsyncSession, ids: Sequence[int]) -> list[models.ProductView]:
            rows = await products_repository.get_products_by_ids(session, principal, ids)
            PRODUCT_CATEGORY.hand_on(category_by_id, rows)
            return rows

        return ProductByIdLoader(self._db, products, _id)

    @cached_property
    def category_by_id(self) -> CategoryByIdLoader:
        return CategoryByIdLoader(self._db, products_repository.get_categories_by_ids, _id)

    @cached_property
    def review_by_id(self) -> ReviewByIdLoader:
        principal, user_by_id = self._principal, self._user_by_id

        async def reviews(session: AsyncSession, ids: Sequence[int]) -> list[models.ReviewView]:
            rows = await products_repository.get_reviews_by_ids(session, principal, ids)
            REVIEW_AUTHOR.hand_on(user_by_id, rows)
            return rows

        return ReviewByIdLoader(self._db, reviews, _id)

    @cached_property
    def categories_by_parent_id(self) -> CategoriesByParentIdLoader:
        return CategoriesByParentIdLoader(self._db, products_repository.list_children_by_parent_ids)

    @cached_property
    def reviews_by_product_id(self) -> ReviewsByProductIdLoader:
        user_by_id = self._user_by_id

        async def reviews_of_products(
            session: AsyncSession, ids: Sequence[int], ordering: Ordering, page: PageRequest
        ) -> dict[int, list[models.ReviewView]]:
            pages = await products_repository.list_reviews_by_product_ids(session, ids, ordering, page)
            REVIEW_AUTHOR.hand_on(user_by_id, _all(pages))
            return pages

        return ReviewsByProductIdLoader(self._db, reviews_of_products, attribute_key)

    @cached_property
    def review_cards_by_product_id(self) -> ReviewCardsByProductIdLoader:
        # Cards carry no whole author: nothing is handed on to the users' loader.
        return ReviewCardsByProductIdLoader(
            self._db, products_repository.list_review_cards_by_product_ids, attribute_key
        )

    @cached_property
    def undated_review_cards_by_product_id(self) -> ReviewCardsByProductIdLoader:
        async def undated(
            session: AsyncSession, ids: Sequence[int], ordering: Ordering, page: PageRequest
        ) -> dict[int, list[models.ReviewCard]]:
            return await products_repository.list_review_cards_by_product_ids(session, ids, ordering, page, dated=False)

        return ReviewCardsByProductIdLoader(self._db, undated, attribute_key)

    @cached_property
    def review_count_by_product_id(self) -> ReviewCountByProductIdLoader:
        return ReviewCountByProductIdLoader(self._db, products_repository.count_reviews_by_product_ids)

    @cached_property
    def reviews_by_user_id(self) -> ReviewsByUserIdLoader:
        principal, user_by_id = self._principal, self._user_by_id

        async def reviews_of_users(
            session: AsyncSession, ids: Sequence[int], ordering: Ordering, page: PageRequest
        ) -> dict[int, list[models.ReviewView]]:
            pages = await products_repository.list_reviews_by_user_ids(session, principal, ids, ordering, page)
            REVIEW_AUTHOR.hand_on(user_by_id, _all(pages))
            return pages

        return ReviewsByUserIdLoader(self._db, reviews_of_users, attribute_key)

    @cached_property
    def review_count_by_user_id(self) -> ReviewCountByUserIdLoader:
        principal = self._principal

        async def review_counts_of_users(session: AsyncSession, ids: Sequence[int]) -> dict[int, int]:
            return await products_repository.count_reviews_by_user_ids(session, principal, ids)

        return ReviewCountByUserIdLoader(self._db, review_counts_of_users)


def _id(row: models.ProductView | models.CategoryView | models.ReviewView) -> int:
    return row.id


CATEGORY_PARENT: ToOne[models.CategoryView, models.CategoryView] = ToOne(
    field="parent", loader=lambda loaders: loaders.products.category_by_id, key_of=lambda row: row.parent_id
)
CATEGORY_CHILDREN: ToMany[models.CategoryView, models.CategoryView] = ToMany(
    field="children", loader=lambda loaders: loaders.products.categories_by_parent_id, key_of=_id
)
PRODUCT_CATEGORY: ToOne[models.ProductView, models.CategoryView] = ToOne(
    field="category",
    loader=lambda loaders: loaders.products.category_by_id,
    key_of=lambda row: row.category_id,
    joined=lambda row: row.category,
    below=(CATEGORY_PARENT,),
)
REVIEW_AUTHOR: ToOne[models.ReviewView, UserView] = ToOne(
    field="author",
    loader=lambda loaders: loaders.users.user_by_id,
    key_of=lambda row: row.user_id,
    joined=lambda row: row.author,
)
REVIEW_PRODUCT: ToOne[models.ReviewView, models.ProductView] = ToOne(
    field="product", loader=lambda loaders: loaders.products.product_by_id, key_of=lambda row: row.product_id
)
PRODUCT_REVIEWS: PageOf[models.ProductView, models.ReviewView] = PageOf(
    field="reviews",
    pages=lambda loaders: loaders.products.reviews_by_product_id,
    counts=lambda loaders: loaders.products.review_count_by_product_id,
    key_of=_id,
    page_of=review_page_from_arguments,
    # Not REVIEW_AUTHOR: every loader of reviews hands their joined authors on (a look-ahead for them
    # primed each author a second time and asked for it again: about 4 % of a TopProducts request).
    below=(REVIEW_PRODUCT,),
)


def _review_cards_of_products(
    pages: "Callable[[Loaders], DataLoader[PageKey, Page[models.ReviewCard]]]",
) -> PageOf[models.ProductView, models.ReviewCard]:
    """PRODUCT_REVIEWS for a selection that reads only the reviews' cards (see `Narrower`)."""
    return PageOf(
        field="reviews",
        pages=pages,
        counts=lambda loaders: loaders.products.review_count_by_product_id,
        key_of=_id,
        page_of=review_page_from_arguments,
    )


PRODUCT_REVIEW_CARDS = _review_cards_of_products(lambda loaders: loaders.products.review_cards_by_product_id)
# Without the reviews' dates, for a selection that reads neither them nor cursors.
PRODUCT_UNDATED_REVIEW_CARDS = _review_cards_of_products(
    lambda loaders: loaders.products.undated_review_cards_by_product_id
)
USER_REVIEWS: PageOf[UserView, models.ReviewView] = PageOf(
    field="reviews",
    pages=lambda loaders: loaders.products.reviews_by_user_id,
    counts=lambda loaders: loaders.products.review_count_by_user_id,
    key_of=lambda row: row.id,
    page_of=in_order(products_repository.NEWEST_REVIEWS_FIRST),
    below=(REVIEW_PRODUCT,),  # authors come joined, as for PRODUCT_REVIEWS
)
# What a page of products can warm for the query below it.
PRODUCT_RELATIONS = (PRODUCT_CATEGORY, PRODUCT_REVIEWS)
