"""SQL for categories, products and reviews. Visibility rules live in these statements."""

from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    FromClause,
    Numeric,
    Select,
    bindparam,
    cast,
    func,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domains.common.keyset import (
    Ordering,
    Page,
    PageRequest,
    SortKey,
    attribute_key,
    keyset_lateral,
    keyset_select,
    keyset_window,
    page_parameters,
    page_shape,
    to_page,
)
from domains.common.principal import Principal
from domains.common.reads import Prepared, dialect_name, keys_value, one_of, select_rows
from domains.orders.models import OrderItem
from domains.products.models import (
    CATEGORY_VIEW_COLUMNS,
    PRODUCT_VIEW_COLUMNS,
    REVIEW_CARD_COLUMNS,
    REVIEW_VIEW_COLUMNS,
    Category,
    CategoryView,
    Product,
    ProductView,
    Review,
    ReviewCard,
    ReviewView,
)
from domains.users.models import USER_VIEW_COLUMNS, User, UserView

T = TypeVar("T")


class ProductSortField(StrEnum):
    CREATED_AT = "CREATED_AT"
    PRICE = "PRICE"
    NAME = "NAME"
    RATING = "RATING"


class ReviewSortField(StrEnum):
    CREATED_AT = "CREATED_AT"
    RATING = "RATING"


PRODUCT_SORT_KEYS = {
    ProductSortField.CREATED_AT: SortKey("CREATED_AT", Product.created_at, "datetime"),
    ProductSortField.PRICE: SortKey("PRICE", Product.price, "decimal"),
    ProductSortField.NAME: SortKey("NAME", Product.name, "str"),
    ProductSortField.RATING: SortKey("RATING", Product.rating_average, "decimal"),
}
REVIEW_SORT_KEYS = {
    ReviewSortField.CREATED_AT: SortKey("CREATED_AT", Review.created_at, "datetime"),
    ReviewSortField.RATING: SortKey("RATING", Review.rating, "int"),
}
NEWEST_REVIEWS_FIRST = Ordering(REVIEW_SORT_KEYS[ReviewSortField.CREATED_AT], descending=True)
CATEGORY_ORDERING = Ordering(SortKey("NAME", Category.name, "str"), descending=False)
MAX_STOCK = 2**31 - 1  # the stock column is a 32-bit integer
CATEGORY_MOVE_LOCK = 0x63617465676F7279  # "category": the key of PostgreSQL's advisory lock for moves


@dataclass(frozen=True, slots=True)
class ProductFilter:
    category_id: int | None = None
    search: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None


def _visible_products(principal: Principal) -> list[ColumnElement[bool]]:
    # Unpublished products exist only for staff.
    return [] if principal.is_staff else [Product.is_published.is_(True)]


# The filter's comparisons, each on a named bind: a statement built once serves every value.
_FILTER_COMPARISONS: dict[str, Callable[[Any], ColumnElement[bool]]] = {
    "category_id": lambda bind: Product.category_id == bind,
    "min_price": lambda bind: Product.price >= bind,
    "max_price": lambda bind: Product.price <= bind,
}


def _filter_values(where: ProductFilter) -> dict[str, Any]:
    """The bind values of the filter's comparisons that are given."""
    values = {"category_id": where.category_id, "min_price": where.min_price, "max_price": where.max_price}
    return {name: value for name, value in values.items() if value is not None}


def _filter_conditions(values: dict[str, Any], in_stock: bool | None) -> list[ColumnElement[bool]]:
    """The filter's conditions but the search: its comparisons on named binds (holding these values)."""
    conditions = [_FILTER_COMPARISONS[name](bindparam(name, value)) for name, value in values.items()]
    if in_stock is not None:
        conditions.append(Product.stock > 0 if in_stock else Product.stock == 0)
    return conditions


def _product_conditions(principal: Principal, where: ProductFilter) -> list[ColumnElement[bool]]:
    conditions = _visible_products(principal) + _filter_conditions(_filter_values(where), where.in_stock)
    if where.search:
        conditions.append(func.lower(Product.name).contains(where.search.lower(), autoescape=True))
    return conditions


def _product_columns(*, for_staff: bool) -> list[Any]:
    # Stock counts and the published flag are staff-only; everyone else learns only whether a product
    # is in stock (and sees published products only).
    staff_only = {"stock", "is_published"}
    return [
        column if for_staff or column.key not in staff_only else null().label(column.key)
        for column in PRODUCT_VIEW_COLUMNS
    ] + [(Product.stock > 0).label("in_stock")]


_STAFF_PRODUCT_COLUMNS = _product_columns(for_staff=True)
_PUBLIC_PRODUCT_COLUMNS = _product_columns(for_staff=False)
_PRODUCT_WIDTH = len(_PUBLIC_PRODUCT_COLUMNS)
_REVIEW_WIDTH = len(REVIEW_VIEW_COLUMNS)


def _products_with_categories(principal: Principal) -> Select[Any]:
    columns = _STAFF_PRODUCT_COLUMNS if principal.is_staff else _PUBLIC_PRODUCT_COLUMNS
    return select(*columns, *CATEGORY_VIEW_COLUMNS).outerjoin(Category, Category.id == Product.category_id)


def _product_view(row: Sequence[Any]) -> ProductView:
    category = row[_PRODUCT_WIDTH:]
    return ProductView(*row[:_PRODUCT_WIDTH], category=CategoryView(*category) if category[0] is not None else None)


def _review_view(row: Sequence[Any]) -> ReviewView:
    author = row[_REVIEW_WIDTH:]
    return ReviewView(*row[:_REVIEW_WIDTH], author=UserView(*author) if author else None)


# By whether the caller is staff (and the dialect): built once, since building the statement (and
# SQLAlchemy's cache key of it) cost more than running it — 0.28 ms of CPU per call for one product.
_PRODUCTS_BY_IDS: dict[tuple[bool, str, bool], Prepared] = {}


async def get_products_by_ids(session: AsyncSession, principal: Principal, ids: Sequence[int]) -> list[ProductView]:
    """Get the visible products among these ids, with their categories."""
    single = len(ids) == 1
    key = (principal.is_staff, dialect_name(session), single)
    prepared = _PRODUCTS_BY_IDS.get(key)
    if prepared is None:
        ids_in = one_of(Product.id, "ids", key[1], single=single)
        stmt = _products_with_categories(principal).where(ids_in, *_visible_products(principal))
        prepared = _PRODUCTS_BY_IDS[key] = Prepared(stmt)
    rows = await select_rows(session, prepared, {"ids": keys_value(ids, single=single)})
    return [_product_view(row) for row in rows]


async def get_product_by_slug(session: AsyncSession, principal: Principal, slug: str) -> ProductView | None:
    """Get a visible product by its slug, with its category."""
    stmt = _products_with_categories(principal).where(Product.slug == slug, *_visible_products(principal))
    row = (await session.execute(stmt)).one_or_none()
    return _product_view(row) if row is not None else None


# A page of products by caller (staff or not), the filters given, the ordering, the page's shape and the
# dialect: built once, like _PRODUCTS_BY_IDS (building a page's statement was about a tenth of a
# TopProducts request's CPU). A search builds its statement per request: its LIKE pattern is the
# searched text escaped by SQLAlchemy, a literal. The combinations run to about two thousand, so the
# statements are kept in a bounded LRU (each holds its compiled SQL once used).
PRODUCT_PAGE_STATEMENTS = 128
_PRODUCT_PAGES: OrderedDict[tuple[Any, ...], Prepared] = OrderedDict()


def _product_page(
    key: tuple[Any, ...],
    principal: Principal,
    values: dict[str, Any],
    in_stock: bool | None,
    ordering: Ordering,
    page: PageRequest,
) -> Prepared:
    """The prepared statement of a products page of this key: kept, or built from this request's (kept)."""
    prepared = _PRODUCT_PAGES.get(key)
    if prepared is not None:
        _PRODUCT_PAGES.move_to_end(key)
        return prepared
    conditions = _filter_conditions(values, in_stock)
    visible = _products_with_categories(principal).where(*_visible_products(principal), *conditions)
    prepared = _PRODUCT_PAGES[key] = Prepared(keyset_select(visible, ordering, Product.id, page))
    if len(_PRODUCT_PAGES) > PRODUCT_PAGE_STATEMENTS:
        _PRODUCT_PAGES.popitem(last=False)
    return prepared


async def list_products(
    session: AsyncSession, principal: Principal, where: ProductFilter, ordering: Ordering, page: PageRequest
) -> Page[ProductView]:
    """List one keyset page of the visible products matching a filter, with their categories."""
    statement: Select[Any] | Prepared
    parameters: dict[str, Any]
    if where.search:
        visible = _products_with_categories(principal).where(*_product_conditions(principal, where))
        statement, parameters = keyset_select(visible, ordering, Product.id, page), {}
    else:
        parameters = _filter_values(where)
        key = (principal.is_staff, tuple(parameters), where.in_stock, ordering, page_shape(page), dialect_name(session))
        statement = _product_page(key, principal, parameters, where.in_stock, ordering, page)
        parameters |= page_parameters(page)
    rows = [_product_view(row) for row in await select_rows(session, statement, parameters)]
    return to_page(rows, ordering, page, attribute_key(ordering))


async def count_products(session: AsyncSession, principal: Principal, where: ProductFilter) -> int:
    """Count the visible products matching a filter."""
    stmt = select(func.count()).select_from(Product).where(*_product_conditions(principal, where))
    return int((await session.execute(stmt)).scalar_one())


async def get_categories_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[CategoryView]:
    """Get the categories among these ids."""
    stmt = select(*CATEGORY_VIEW_COLUMNS).where(Category.id.in_(ids))
    return [CategoryView(*row) for row in await select_rows(session, stmt)]


async def get_category_by_slug(session: AsyncSession, slug: str) -> CategoryView | None:
    """Get a category by its slug."""
    row = (await session.execute(select(*CATEGORY_VIEW_COLUMNS).where(Category.slug == slug))).one_or_none()
    return CategoryView(*row) if row is not None else None


def _categories_under(parent_id: int | None, roots_only: bool) -> Select[Any]:
    stmt = select(*CATEGORY_VIEW_COLUMNS)
    if parent_id is not None:
        return stmt.where(Category.parent_id == parent_id)
    return stmt.where(Category.parent_id.is_(None)) if roots_only else stmt


async def list_categories(
    session: AsyncSession, *, parent_id: int | None, roots_only: bool, page: PageRequest
) -> Page[CategoryView]:
    """List one page of categories by name: all, the roots, or one category's children."""
    stmt = keyset_select(_categories_under(parent_id, roots_only), CATEGORY_ORDERING, Category.id, page)
    rows = [CategoryView(*row) for row in await select_rows(session, stmt)]
    return to_page(rows, CATEGORY_ORDERING, page, attribute_key(CATEGORY_ORDERING))


async def count_categories(session: AsyncSession, *, parent_id: int | None, roots_only: bool) -> int:
    """Count the categories a `list_categories` call pages through."""
    stmt = select(func.count()).select_from(_categories_under(parent_id, roots_only).subquery())
    return int((await session.execute(stmt)).scalar_one())


async def list_children_by_parent_ids(
    session: AsyncSession, parent_ids: Sequence[int]
) -> dict[int, list[CategoryView]]:
    """List the direct subcategories of each category, by name."""
    stmt = select(*CATEGORY_VIEW_COLUMNS).where(Category.parent_id.in_(parent_ids)).order_by(Category.name, Category.id)
    children: dict[int, list[CategoryView]] = defaultdict(list)
    for row in await select_rows(session, stmt):
        category = CategoryView(*row)
        if category.parent_id is not None:
            children[category.parent_id].append(category)
    return children


def _reviews(*, published_only: bool, columns: Sequence[Any] = REVIEW_VIEW_COLUMNS) -> Select[Any]:
    stmt = select(*columns)
    if not published_only:
        return stmt
    # A review is as visible as its product.
    return stmt.join(Product, Product.id == Review.product_id).where(Product.is_published.is_(True))


def _visible_reviews(principal: Principal) -> Select[Any]:
    return _reviews(published_only=not principal.is_staff)


async def get_reviews_by_ids(session: AsyncSession, principal: Principal, ids: Sequence[int]) -> list[ReviewView]:
    """Get the visible reviews among these ids, with their authors."""
    stmt = _visible_reviews(principal).add_columns(*USER_VIEW_COLUMNS).join(User, User.id == Review.user_id)
    return [_review_view(row) for row in await select_rows(session, stmt.where(Review.id.in_(ids)))]


# Built once per shape and reused with new values: constructing this statement and its cache
# key costs more than half a millisecond, about a tenth of a small request.
_REVIEW_WINDOWS: dict[tuple[Any, ...], Prepared] = {}


@dataclass(frozen=True, slots=True, eq=False)
class _ReviewRows(Generic[T]):
    """What a review window selects, and the view each of its rows becomes."""

    name: str
    reviews: Sequence[Any]
    authors: Sequence[Any]
    view: Callable[[Sequence[Any]], T]


def _undated_review_card(row: Sequence[Any]) -> ReviewCard:
    return ReviewCard(row[0], row[1], row[2], row[3], row[4], None, row[5])


_WHOLE_REVIEWS = _ReviewRows("whole", REVIEW_VIEW_COLUMNS, USER_VIEW_COLUMNS, _review_view)
_REVIEW_CARDS = _ReviewRows("cards", REVIEW_CARD_COLUMNS, [User.name], lambda row: ReviewCard(*row))
# A timestamp is the dearest column to decode (a timezone-aware datetime per row): left out when unread.
_UNDATED_REVIEW_CARDS = _ReviewRows(
    "undated cards",
    [column for column in REVIEW_CARD_COLUMNS if column.key != "created_at"],
    [User.name],
    _undated_review_card,
)


def _review_page_statement(
    stmt: Select[Any], partition: Any, ordering: Ordering, page: PageRequest, rows: _ReviewRows[Any], *, lateral: bool
) -> Select[Any]:
    """Each parent's page of the reviews `stmt` selects, with their authors' columns, in one statement."""
    on_page: list[ColumnElement[bool]] = []
    source: FromClause
    if lateral:
        parents, paged, order = keyset_lateral(stmt, partition, ordering, Review.id, page)
        source = parents.join(paged, true())
    else:
        paged, bound, order = keyset_window(stmt, partition, ordering, Review.id, page)
        source, on_page = paged, [bound]
    return (
        select(*(paged.c[column.key] for column in rows.reviews), *rows.authors)
        .select_from(source.join(User, User.id == paged.c.user_id))
        .where(*on_page)
        .order_by(*order)
    )


async def _review_pages(
    session: AsyncSession,
    partition: Any,
    parent_ids: Sequence[int],
    ordering: Ordering,
    page: PageRequest,
    rows: _ReviewRows[T],
    *,
    published_only: bool,
) -> dict[int, list[T]]:
    dialect, single = dialect_name(session), len(parent_ids) == 1
    key = (partition.key, published_only, rows.name, ordering, page_shape(page), dialect, single)
    paged = _REVIEW_WINDOWS.get(key)
    if paged is None:
        reviews = _reviews(published_only=published_only, columns=rows.reviews)
        lateral = dialect == "postgresql" and not single  # one parent: its `= $1` window is as cheap
        if not lateral:
            reviews = reviews.where(one_of(partition, "parent_ids", dialect, single=single))
        statement = _review_page_statement(reviews, partition, ordering, page, rows, lateral=lateral)
        paged = _REVIEW_WINDOWS[key] = Prepared(statement)
    pages: dict[int, list[T]] = defaultdict(list)
    parameters = {"parent_ids": keys_value(parent_ids, single=single), **page_parameters(page)}
    view = rows.view
    for values in await select_rows(session, paged, parameters):
        review = view(values)
        pages[getattr(review, partition.key)].append(review)
    return pages


async def list_reviews_by_product_ids(
    session: AsyncSession, product_ids: Sequence[int], ordering: Ordering, page: PageRequest
) -> dict[int, list[ReviewView]]:
    """List one page (plus a look-ahead row) of reviews for each product, with authors, in one statement."""
    # Reviews are as visible as their product, and the caller could already see these products.
    return await _review_pages(
        session, Review.product_id, product_ids, ordering, page, _WHOLE_REVIEWS, published_only=False
    )


async def list_review_cards_by_product_ids(
    session: AsyncSession, product_ids: Sequence[int], ordering: Ordering, page: PageRequest, *, dated: bool = True
) -> dict[int, list[ReviewCard]]:
    """`list_reviews_by_product_ids` for a list that reads only a review's card (`ReviewCard`).

    Undated (`dated=False`), the cards' `created_at` is None: for a list reading neither the
    reviews' dates nor cursors.
    """
    rows = _REVIEW_CARDS if dated else _UNDATED_REVIEW_CARDS
    return await _review_pages(session, Review.product_id, product_ids, ordering, page, rows, published_only=False)


async def count_reviews_by_product_ids(session: AsyncSession, product_ids: Sequence[int]) -> dict[int, int]:
    """Count the reviews of each product."""
    stmt = select(Review.product_id, func.count()).where(Review.product_id.in_(product_ids)).group_by(Review.product_id)
    return {product_id: int(count) for product_id, count in (await session.execute(stmt)).all()}


async def list_reviews_by_user_ids(
    session: AsyncSession, principal: Principal, user_ids: Sequence[int], ordering: Ordering, page: PageRequest
) -> dict[int, list[ReviewView]]:
    """List one page (plus a look-ahead row) of each user's visible reviews, with authors, in one statement."""
    published_only = not principal.is_staff
    return await _review_pages(
        session, Review.user_id, user_ids, ordering, page, _WHOLE_REVIEWS, published_only=published_only
    )


async def count_reviews_by_user_ids(
    session: AsyncSession, principal: Principal, user_ids: Sequence[int]
) -> dict[int, int]:
    """Count each user's visible reviews."""
    stmt = (
        _visible_reviews(principal)
        .with_only_columns(Review.user_id, func.count())
        .where(Review.user_id.in_(user_ids))
        .group_by(Review.user_id)
    )
    return {user_id: int(count) for user_id, count in (await session.execute(stmt)).all()}


async def refresh_product_ratings(session: AsyncSession, product_ids: Sequence[int] | None = None) -> None:
    """Recompute the denormalised review statistics of some products (all when no ids are given)."""
    count = select(func.count()).where(Review.product_id == Product.id).scalar_subquery()
    total = select(func.coalesce(func.sum(Review.rating), 0)).where(Review.product_id == Product.id).scalar_subquery()
    scope = [Product.id.in_(product_ids)] if product_ids is not None else []
    await session.execute(update(Product).where(*scope).values(rating_count=count, rating_sum=total))
    # Through NUMERIC so that round() exists on PostgreSQL and the stored value is the one the
    # cursors carry (three decimals) on every database.
    mean = cast(Product.rating_sum, Float) / func.nullif(Product.rating_count, 0)
    average = func.round(cast(mean, Numeric), 3)
    await session.execute(update(Product).where(*scope).values(rating_average=func.coalesce(average, 0)))


# Writes. The service changes ORM rows fetched here; these statements are the SQL it cannot say with the ORM.


async def get_category(session: AsyncSession, category_id: int) -> Category | None:
    """Get a category by id, to change it."""
    return await session.get(Category, category_id, populate_existing=True)


async def get_product(session: AsyncSession, product_id: int) -> Product | None:
    """Get a product by id, published or not, to change it."""
    return await session.get(Product, product_id, populate_existing=True)


async def get_removable_review(session: AsyncSession, principal: Principal, review_id: int) -> Review | None:
    """Get a review the principal can see or wrote, to delete it."""
    stmt = select(Review).join(Product, Product.id == Review.product_id).where(Review.id == review_id)
    if not principal.is_staff:
        stmt = stmt.where(or_(Product.is_published.is_(True), Review.user_id == principal.user_id))
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_product_id_by_slug(session: AsyncSession, slug: str) -> int | None:
    """Get the id of the product with this slug, published or not."""
    return (await session.execute(select(Product.id).where(Product.slug == slug))).scalar_one_or_none()


async def get_product_id_by_sku(session: AsyncSession, sku: str) -> int | None:
    """Get the id of the product with this SKU, published or not."""
    return (await session.execute(select(Product.id).where(Product.sku == sku))).scalar_one_or_none()


async def get_review_id_by_author(session: AsyncSession, product_id: int, user_id: int) -> int | None:
    """Get the id of a user's review of a product."""
    stmt = select(Review.id).where(Review.product_id == product_id, Review.user_id == user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_category_ancestor_ids(session: AsyncSession, category_id: int) -> set[int]:
    """List a category's id and the ids of all its ancestors; empty when it does not exist."""
    chain = select(Category.id, Category.parent_id).where(Category.id == category_id).cte("chain", recursive=True)
    parent = aliased(Category)
    # UNION, not UNION ALL: should the tree ever hold a cycle, the walk still ends.
    chain = chain.union(select(parent.id, parent.parent_id).join(chain, parent.id == chain.c.parent_id))
    return set((await session.execute(select(chain.c.id))).scalars())


async def lock_category_tree(session: AsyncSession) -> None:
    """Wait for and hold the lock on moving categories until the transaction ends."""
    # SQLite needs none: its writers already take turns (BEGIN IMMEDIATE, see api/db.py).
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(CATEGORY_MOVE_LOCK)))


async def count_category_references(session: AsyncSession, category_id: int) -> int:
    """Count the subcategories and products that point at a category."""
    children = select(func.count()).where(Category.parent_id == category_id).scalar_subquery()
    products = select(func.count()).where(Product.category_id == category_id).scalar_subquery()
    return int((await session.execute(select(children + products))).scalar_one())


async def count_order_items_of_product(session: AsyncSession, product_id: int) -> int:
    """Count the order lines that name a product."""
    stmt = select(func.count()).select_from(OrderItem).where(OrderItem.product_id == product_id)
    return int((await session.execute(stmt)).scalar_one())


async def adjust_product_stock(session: AsyncSession, product_id: int, delta: int) -> bool:
    """Add `delta` to a product's stock in one statement unless the result leaves 0..MAX_STOCK; tell whether it did."""
    # Compared in 64 bits: `stock + delta` past 2**31 would be an error on PostgreSQL, not a false condition.
    result_stock = cast(Product.stock, BigInteger) + delta
    stmt = (
        update(Product)
        .where(Product.id == product_id, result_stock >= 0, result_stock <= MAX_STOCK)
        .values(stock=Product.stock + delta)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]
