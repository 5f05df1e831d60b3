from decimal import Decimal

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
from sqlalchemy.orm import Mapped, mapped_column, relationship

from domains.common.base import Base, TimestampMixin
from domains.users.models import User


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

    # Never loaded implicitly (lazy="raise"): repositories join it where a page will need it,
    # and the loaders hand it on to `category_by_id`.
    category: Mapped[Category | None] = relationship(lazy="raise")


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

    # Joined by the review pages and handed on to the `user_by_id` loader (lazy="raise").
    author: Mapped[User] = relationship(lazy="raise")
