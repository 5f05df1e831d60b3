from dataclasses import field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from domains.common.base import Base, TimestampMixin
from domains.common.views import view
from domains.users.models import UserView


class Category(TimestampMixin, Base):
    __tablename__ = "category"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(140), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("category.id", ondelete="RESTRICT"), index=True)


class Product(TimestampMixin, Base):
    __tablename__ = "product"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_non_negative"),
        CheckConstraint("price >= 0", name="price_non_negative"),
        # Keyset pagination: every sort key is indexed together with the id tie-breaker.
        Index(None, "created_at", "id"),
        Index(None, "price", "id"),
        Index(None, "name", "id"),
        Index(None, "rating_average", "id"),
        Index(None, "category_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(220), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
    stock: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    is_published: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    category_id: Mapped[int | None] = mapped_column(ForeignKey("category.id", ondelete="RESTRICT"))
    # Denormalised review statistics, updated in the same statement as a review write,
    # so that `rating` and ordering by RATING never aggregate the review table.
    rating_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rating_sum: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rating_average: Mapped[Decimal] = mapped_column(Numeric(4, 3), default=Decimal(0), server_default="0")


class Review(TimestampMixin, Base):
    __tablename__ = "review"
    __table_args__ = (
        CheckConstraint("rating >= 1 AND rating <= 5", name="rating_range"),
        UniqueConstraint("product_id", "user_id"),
        Index(None, "product_id", "created_at", "id"),
        Index(None, "product_id", "rating", "id"),
        Index(None, "user_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    rating: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200), default="", server_default="")
    body: Mapped[str] = mapped_column(Text, default="", server_default="")


# Read views. The read paths select these columns with Core and build plain frozen values: an
# ORM instance sits in a reference cycle with its state, so a page of hundreds of them is
# freed only by the cyclic garbage collector, which then costs a large share of the CPU.


@view
class CategoryView:
    id: int
    name: str
    slug: str
    description: str
    parent_id: int | None


@view
class ProductView:
    id: int
    sku: str
    name: str
    slug: str
    description: str
    price: Decimal
    currency: str
    stock: int | None  # null unless the reader is staff: the repository's statements leave it out
    is_published: bool | None  # null unless the reader is staff, like `stock`
    category_id: int | None
    rating_count: int
    rating_average: Decimal
    created_at: datetime
    updated_at: datetime
    in_stock: bool
    category: CategoryView | None = field(default=None, kw_only=True)  # joined by the statements that page products


@view
class ReviewView:
    id: int
    product_id: int
    user_id: int
    rating: int
    title: str
    body: str
    created_at: datetime
    author: UserView | None = field(default=None, kw_only=True)  # joined by the statements that page reviews


@view
class ReviewCard:
    """A review as a list of them shows it when nothing more is read: no title, and only its author's name.

    A page of 250 reviews with their whole authors (e-mail, roles, two timestamps, the title) spends
    most of its driver's decoding on columns such a list never reads.
    """

    id: int
    product_id: int
    user_id: int
    rating: int
    body: str
    created_at: datetime | None  # None in a list that reads neither dates nor cursors (the repository's `dated`)
    author_name: str


def _columns(table: Any, view: type[Any]) -> list[Any]:
    return [table.c[f.name] for f in fields(view) if f.name in table.c]


CATEGORY_VIEW_COLUMNS: list[Any] = _columns(Category.__table__, CategoryView)
PRODUCT_VIEW_COLUMNS: list[Any] = _columns(Product.__table__, ProductView)
REVIEW_VIEW_COLUMNS: list[Any] = _columns(Review.__table__, ReviewView)
REVIEW_CARD_COLUMNS: list[Any] = _columns(Review.__table__, ReviewCard)  # and the author's name
