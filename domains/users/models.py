from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from domains.common.base import Base, TimestampMixin, UTCDateTime
from domains.common.views import view

ViewT = TypeVar("ViewT")


class User(TimestampMixin, Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased by the service, so uniqueness is case-insensitive on every database.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(Text)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class ApiKey(TimestampMixin, Base):
    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RefreshToken(Base):
    __tablename__ = "refresh_token"
    __table_args__ = (Index(None, "family_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(36))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@view
class UserView:
    """A user row as the read paths need it: a plain value, free of ORM identity and state."""

    id: int
    email: str
    name: str
    roles: list[str]
    is_active: bool
    created_at: datetime


USER_VIEW_COLUMNS: list[Any] = [User.__table__.c[f.name] for f in fields(UserView)]


@view
class ApiKeyView:
    """An API key as the read paths need it; the secret's hash is left out on purpose."""

    id: int
    user_id: int
    name: str
    prefix: str
    roles: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


API_KEY_VIEW_COLUMNS: list[Any] = [ApiKey.__table__.c[f.name] for f in fields(ApiKeyView)]


def view_of(view: type[ViewT], row: object) -> ViewT:
    """Build a read view from an ORM instance that a write just changed."""
    return view(*(getattr(row, f.name) for f in fields(view)))  # type: ignore[arg-type]
