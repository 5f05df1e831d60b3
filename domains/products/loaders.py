"""Per-request loaders of the catalog: every nested catalog field goes through one of these."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from api.db import RequestDb
from domains.common.keyset import Ordering, PageRequest, attribute_key
from domains.common.loaders import (
    ChildrenByParentLoader,
    CountByParentLoader,
    PageByParentLoader,
    RowByKeyLoader,
)
from domains.common.principal import Principal
from domains.products import models
from domains.products import repository as products_repository


class ProductByIdLoader(RowByKeyLoader[int, models.Product]):
    pass


class CategoryByIdLoader(RowByKeyLoader[int, models.Category]):
    pass


class ReviewByIdLoader(RowByKeyLoader[int, models.Review]):
    pass


class CategoriesByParentIdLoader(ChildrenByParentLoader[models.Category]):
    pass


class ReviewsByProductIdLoader(PageByParentLoader[models.Review]):
    pass


class ReviewCountByProductIdLoader(CountByParentLoader):
    pass


class ReviewsByUserIdLoader(PageByParentLoader[models.Review]):
    pass


class ReviewCountByUserIdLoader(CountByParentLoader):
    pass


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
    def create(cls, db: RequestDb, principal: Principal) -> Self:
        """Build fresh loaders for one request (they capture its event loop and principal)."""

        async def products(session: AsyncSession, ids: Sequence[int]) -> list[models.Product]:
            return await products_repository.get_products_by_ids(session, principal, ids)

        async def reviews(session: AsyncSession, ids: Sequence[int]) -> list[models.Review]:
            return await products_repository.get_reviews_by_ids(session, principal, ids)

        async def reviews_of_users(
            session: AsyncSession, ids: Sequence[int], ordering: Ordering, page: PageRequest
        ) -> dict[int, list[models.Review]]:
            return await products_repository.list_reviews_by_user_ids(session, principal, ids, ordering, page)

        async def review_counts_of_users(session: AsyncSession, ids: Sequence[int]) -> dict[int, int]:
            return await products_repository.count_reviews_by_user_ids(session, principal, ids)

        return cls(
            product_by_id=ProductByIdLoader(db, products, _id),
            category_by_id=CategoryByIdLoader(db, products_repository.get_categories_by_ids, _id),
            review_by_id=ReviewByIdLoader(db, reviews, _id),
            categories_by_parent_id=CategoriesByParentIdLoader(db, products_repository.list_children_by_parent_ids),
            reviews_by_product_id=ReviewsByProductIdLoader(
                db, products_repository.list_reviews_by_product_ids, attribute_key
            ),
            review_count_by_product_id=ReviewCountByProductIdLoader(
                db, products_repository.count_reviews_by_product_ids
            ),
            reviews_by_user_id=ReviewsByUserIdLoader(db, reviews_of_users, attribute_key),
            review_count_by_user_id=ReviewCountByUserIdLoader(db, review_counts_of_users),
        )


def _id(row: models.Product | models.Category | models.Review) -> int:
    return row.id
