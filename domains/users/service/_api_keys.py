"""API keys: created by signed-in users for themselves, revoked by their owner or an admin, and authenticated."""

import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Self

from pydantic import Field, FutureDatetime
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.exceptions import (
    ErrorCode,
    FieldProblem,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthenticatedError,
)
from domains.common.principal import Principal, Role, effective_roles, require_user
from domains.common.validation import FrozenInput, in_field_order, validated
from domains.users import repository as users_repository
from domains.users.exceptions import API_KEY_REFUSED, INVALID_API_KEY
from domains.users.models import ApiKey
from domains.users.service._accounts import Name
from domains.users.tokens import token_digest

API_KEY_PREFIX_MARK = "sfk_"


class ApiKeyCreate(FrozenInput):
    """A new API key: its name, the roles it grants (default: all of its owner's), and when it stops working."""

    name: Name
    roles: tuple[Role, ...] | None = None
    expires_at: Annotated[FutureDatetime | None, Field(description="The expiry must lie in the future.")] = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any], *, owner: Principal) -> Self:
        """Validate a new key for `owner`; raise InvalidInputError with every problem, in the order of the fields."""
        roles = data.get("roles")
        # The roles are judged as given, so each problem points at the role the client sent.
        given = list(roles) if isinstance(roles, Sequence) and not isinstance(roles, str) else []
        not_held = _roles_not_held(owner, given)
        try:
            api_key = validated(cls, data)
        except InvalidInputError as exc:
            raise InvalidInputError(in_field_order(cls, [*exc.problems, *not_held])) from exc
        if not_held:
            raise InvalidInputError(not_held)
        return api_key


class ApiKeyRevoke(FrozenInput):
    """The API key to revoke."""

    api_key_id: int


def _roles_not_held(owner: Principal, roles: Sequence[object]) -> list[FieldProblem]:
    # A key can only grant what its owner holds, or it would raise its owner's rights.
    held = effective_roles(owner.roles)
    return [
        FieldProblem(ErrorCode.ROLE_NOT_HELD, f"You do not hold the {role} role.", ("input", "roles", str(index)))
        for index, role in enumerate(roles)
        if role not in held
    ]


async def create_api_key(session: AsyncSession, principal: Principal, *, input: ApiKeyCreate) -> tuple[ApiKey, str]:
    """Create an API key for the principal's user; return it with its full key, which is never stored.

    Signed-in users only, not API keys: a key minting keys would outlive its own expiry and revocation.
    """
    owner_id = require_user(principal)
    if principal.api_key_prefix is not None:
        raise ForbiddenError(API_KEY_REFUSED)
    # Checked here too, whoever built the input: `from_data` only reports it with the other problems.
    not_held = _roles_not_held(principal, input.roles or ())
    if not_held:
        raise InvalidInputError(not_held)
    granted = list(dict.fromkeys(input.roles)) if input.roles is not None else sorted(principal.roles)
    prefix, secret = API_KEY_PREFIX_MARK + secrets.token_hex(6), secrets.token_urlsafe(32)
    api_key = ApiKey(
        user_id=owner_id,
        name=input.name,
        prefix=prefix,
        secret_hash=token_digest(secret),
        roles=[role.value for role in granted],
        expires_at=input.expires_at,
    )
    session.add(api_key)
    await session.flush()
    return api_key, f"{prefix}.{secret}"


async def revoke_api_key(session: AsyncSession, principal: Principal, *, input: ApiKeyRevoke, now: datetime) -> ApiKey:
    """Revoke one of the principal's keys (an admin: anyone's); revoking twice keeps the first time."""
    require_user(principal)
    # Ownership is the repository's visibility rule: someone else's key is NOT_FOUND, unless you are an admin.
    api_key = await users_repository.get_api_key(session, principal, input.api_key_id)
    if api_key is None:
        raise NotFoundError("No such API key.", ("input", "apiKeyId"))
    if api_key.revoked_at is None:
        api_key.revoked_at = now
        await session.flush()
    return api_key


@dataclass(frozen=True, slots=True)
class ApiKeyAuthentication:
    principal: Principal
    api_key_id: int
    stale: bool


async def authenticate_api_key(
    session: AsyncSession, *, key: str, now: datetime, touch_interval: timedelta
) -> ApiKeyAuthentication:
    """Turn an API key into a principal holding the key's roles that its owner still holds."""
    prefix, _, secret = key.partition(".")
    found = (
        await users_repository.get_api_key_credential(session, prefix)
        if prefix.startswith(API_KEY_PREFIX_MARK)
        else None
    )
    # The prefix is public (it is shown in listings); only the secret is compared, in constant time.
    if found is None or not hmac.compare_digest(found.secret_hash, token_digest(secret)):
        raise UnauthenticatedError(INVALID_API_KEY)
    if (
        found.revoked_at is not None
        or not found.owner_is_active
        or (found.expires_at is not None and found.expires_at <= now)
    ):
        raise UnauthenticatedError(INVALID_API_KEY)
    owner_roles = effective_roles(frozenset(Role(role) for role in found.owner_roles))
    roles = effective_roles(frozenset(Role(role) for role in found.roles)) & owner_roles
    stale = found.last_used_at is None or found.last_used_at <= now - touch_interval
    return ApiKeyAuthentication(Principal(user_id=found.user_id, roles=roles, api_key_prefix=prefix), found.id, stale)


async def record_api_key_use(
    session: AsyncSession, *, api_key_id: int, now: datetime, touch_interval: timedelta
) -> None:
    """Record that a key was used, at most once per interval."""
    await users_repository.touch_api_key(session, api_key_id, now=now, stale_before=now - touch_interval)
