"""Per-request loaders of the catalog: every nested catalog field goes through one of these."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Self

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.keyset import Ordering, PageRequest, attribute_key
from domains.common.principal import Principal
from domains.products import models
from domains.products import repository as products_repository
from domains.users.models import UserView
from schema.loaders import (
    ChildrenByParentLoader,
    CountByParentLoader,
    PageByParentLoader,
    RowByKeyLoader,
)
from schema.unit_of_work import RequestDb


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


class ReviewCountByProductIdLoader(CountByParentLoader):
    pass


class ReviewsByUserIdLoader(PageByParentLoader[models.ReviewView]):
    pass


class ReviewCountByUserIdLoader(CountByParentLoader):
    pass


def hand_on_categories(loader: CategoryByIdLoader, rows: Iterable[models.ProductView]) -> None:
    """Prime the category loader with the categories joined to these products."""
    for row in rows:
        if row.category is not None:
            loader.prime(row.category.id, row.category)


def hand_on_authors(loader: DataLoader[int, UserView | None], reviews: Iterable[models.ReviewView]) -> None:
    """Prime the user loader with the authors joined to these reviews."""
    for review in reviews:
        if review.author is not None:
            loader.prime(review.author.id, review.author)


def _all(pages: dict[int, list[models.ReviewView]]) -> Iterable[models.ReviewView]:
    return (review for page in pages.values() for review in page)


@dataclass(frozen=True, slots=True)
class ProductsLoaders:
    product_by_id: ProductByIdLoader
    category_by_id: CategoryByIdLoader
    review_by_id: ReviewByIdLoader
    categories_by_parent_id: CategoriesByParentIdLoader
    reviews_by_product_id: ReviewsByProductIdLoader
    review_count_by_product_id: ReviewCountByProductIdLoader
    reviews_by_user_id: ReviewsByUserIdLoader
    review_count_by_user_id: ReviewCountByUserIdLoader

    @classmethod
    def create(cls, db: RequestDb, principal: Principal, user_by_id: DataLoader[int, UserView | None]) -> Self:
        """Build fresh loaders for one request (they capture its event loop and principal).

        Rows joined by a statement (a product's category, a review's author) are handed on to
        the loader of their own type, so asking for them next costs no statement.
        """
        category_by_id = CategoryByIdLoader(db, products_repository.get_categories_by_ids, _id)

        async def products(session: AsyncSession, ids: Sequence[int]) -> list[models.ProductView]:
            rows = await products_repository.get_products_by_ids(session, principal, ids)
            hand_on_categories(category_by_id, rows)
            return rows

        async def reviews_of_products(
            session: AsyncSession, ids: Sequence[int], ordering: Ordering, page: PageRequest
        ) -> dict[int, list[models.ReviewView]]:
            pages = await products_repository.list_reviews_by_product_ids(session, ids, ordering, page)
            hand_on_authors(user_by_id, _all(pages))
            return pages

        async def reviews(session: AsyncSession, ids: Sequence[int]) -> list[models.ReviewView]:
            rows = await products_repository.get_reviews_by_ids(session, principal, ids)
            hand_on_authors(user_by_id, rows)
            return rows

        async def reviews_of_users(
            session: AsyncSession, ids: Sequence[int], ordering: Ordering, page: PageRequest
        ) -> dict[int, list[models.ReviewView]]:
            pages = await products_repository.list_reviews_by_user_ids(session, principal, ids, ordering, page)
            hand_on_authors(user_by_id, _all(pages))
            return pages

        async def review_counts_of_users(session: AsyncSession, ids: Sequence[int]) -> dict[int, int]:
            return await products_repository.count_reviews_by_user_ids(session, principal, ids)

        return cls(
            product_by_id=ProductByIdLoader(db, products, _id),
            category_by_id=category_by_id,
            review_by_id=ReviewByIdLoader(db, reviews, _id),
            categories_by_parent_id=CategoriesByParentIdLoader(db, products_repository.list_children_by_parent_ids),
            reviews_by_product_id=ReviewsByProductIdLoader(db, reviews_of_products, attribute_key),
            review_count_by_product_id=ReviewCountByProductIdLoader(
                db, products_repository.count_reviews_by_product_ids
            ),
            reviews_by_user_id=ReviewsByUserIdLoader(db, reviews_of_users, attribute_key),
            review_count_by_user_id=ReviewCountByUserIdLoader(db, review_counts_of_users),
        )


def _id(row: models.ProductView | models.CategoryView | models.ReviewView) -> int:
    return row.id
