"""SQL for accounts, API keys and refresh tokens. Visibility rules live in these statements."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, false, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.keyset import Ordering, Page, PageRequest, SortKey, attribute_key, keyset_select, to_page
from domains.common.principal import Principal, Role
from domains.common.reads import select_rows
from domains.users.models import (
    API_KEY_VIEW_COLUMNS,
    USER_VIEW_COLUMNS,
    ApiKey,
    ApiKeyView,
    RefreshToken,
    User,
    UserView,
)

USER_ORDERING = Ordering(SortKey("CREATED_AT", User.created_at, "datetime"), descending=True)
API_KEY_ORDERING = Ordering(SortKey("CREATED_AT", ApiKey.created_at, "datetime"), descending=True)


async def get_users_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[UserView]:
    """Get the users among these ids."""
    return [UserView(*row) for row in await select_rows(session, select(*USER_VIEW_COLUMNS).where(User.id.in_(ids)))]


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    """Get a user by id, to change it."""
    return await session.get(User, user_id)


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    """Get a user by lower-cased e-mail address."""
    return (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()


async def replace_password_hash(session: AsyncSession, user_id: int, *, old: str, new: str) -> None:
    """Replace a user's password hash, unless it is no longer `old` (changed by someone else meanwhile)."""
    await session.execute(update(User).where(User.id == user_id, User.password_hash == old).values(password_hash=new))


async def list_users(session: AsyncSession, page: PageRequest) -> Page[UserView]:
    """List one keyset page of all users, newest first."""
    rows = [
        UserView(*row)
        for row in await select_rows(session, keyset_select(select(*USER_VIEW_COLUMNS), USER_ORDERING, User.id, page))
    ]
    return to_page(rows, USER_ORDERING, page, attribute_key(USER_ORDERING))


async def count_users(session: AsyncSession) -> int:
    """Count all users."""
    return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


def _readable_api_keys(principal: Principal) -> ColumnElement[bool]:
    # Admins see every key; anyone else only their own.
    if principal.has_role(Role.ADMIN):
        return true()
    if principal.user_id is None:
        return false()
    return ApiKey.user_id == principal.user_id


async def get_api_keys_by_ids(session: AsyncSession, principal: Principal, ids: Sequence[int]) -> list[ApiKeyView]:
    """Get the API keys among these ids that the principal may see."""
    stmt = select(*API_KEY_VIEW_COLUMNS).where(ApiKey.id.in_(ids), _readable_api_keys(principal))
    return [ApiKeyView(*row) for row in await session.execute(stmt)]


async def get_api_key(session: AsyncSession, principal: Principal, api_key_id: int) -> ApiKey | None:
    """Get an API key the principal may see, to change it."""
    stmt = select(ApiKey).where(ApiKey.id == api_key_id, _readable_api_keys(principal))
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_api_keys(session: AsyncSession, principal: Principal, page: PageRequest) -> Page[ApiKeyView]:
    """List one keyset page of the API keys the principal may see, newest first."""
    visible = select(*API_KEY_VIEW_COLUMNS).where(_readable_api_keys(principal))
    rows = [
        ApiKeyView(*row) for row in await session.execute(keyset_select(visible, API_KEY_ORDERING, ApiKey.id, page))
    ]
    return to_page(rows, API_KEY_ORDERING, page, attribute_key(API_KEY_ORDERING))


async def count_api_keys(session: AsyncSession, principal: Principal) -> int:
    """Count the API keys the principal may see."""
    stmt = select(func.count()).select_from(ApiKey).where(_readable_api_keys(principal))
    return int((await session.execute(stmt)).scalar_one())


@dataclass(frozen=True, slots=True)
class ApiKeyCredential:
    id: int
    user_id: int
    secret_hash: str
    roles: list[str]
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    owner_roles: list[str]
    owner_is_active: bool


async def get_api_key_credential(session: AsyncSession, prefix: str) -> ApiKeyCredential | None:
    """Get what authenticating with a key needs: the key's secret hash and state, and its owner's roles and state."""
    stmt = (
        select(
            ApiKey.id,
            ApiKey.user_id,
            ApiKey.secret_hash,
            ApiKey.roles,
            ApiKey.last_used_at,
            ApiKey.expires_at,
            ApiKey.revoked_at,
            User.roles.label("owner_roles"),
            User.is_active.label("owner_is_active"),
        )
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.prefix == prefix)
    )
    row = (await session.execute(stmt)).one_or_none()
    return ApiKeyCredential(*row) if row is not None else None


async def touch_api_key(session: AsyncSession, api_key_id: int, *, now: datetime, stale_before: datetime) -> None:
    """Record a key's use, unless a use after `stale_before` is already recorded (a concurrent request's)."""
    stmt = (
        update(ApiKey)
        .where(ApiKey.id == api_key_id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < stale_before))
        .values(last_used_at=now)
    )
    await session.execute(stmt)


async def get_refresh_token_by_hash(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    """Get a stored refresh token by the hash of its value."""
    return (
        await session.execute(select(RefreshToken).where(RefreshToken.token_hash == token_hash))
    ).scalar_one_or_none()


async def mark_refresh_token_used(session: AsyncSession, token_id: int, *, now: datetime) -> bool:
    """Mark a live refresh token used; False when it was already used or revoked (also by a concurrent call)."""
    stmt = (
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))
        .values(used_at=now)
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def revoke_refresh_family(session: AsyncSession, family_id: str, *, now: datetime) -> None:
    """Revoke every refresh token of a family."""
    stmt = (
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(stmt)


async def delete_refresh_tokens_expired_before(session: AsyncSession, moment: datetime) -> int:
    """Delete refresh tokens that expired before a time; return how many."""
    result: Any = await session.execute(delete(RefreshToken).where(RefreshToken.expires_at < moment))
    return int(result.rowcount or 0)
