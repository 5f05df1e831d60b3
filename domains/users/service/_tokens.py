"""Sign-in and sessions: access and refresh tokens, and turning an access token into a principal.

None of these asks for a principal: the credential presented (a password, a refresh token, an
access token) is the authority, and whoever holds it may use it.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.exceptions import UnauthenticatedError
from domains.common.principal import Principal, require_system
from domains.common.validation import FrozenInput
from domains.users import repository as users_repository
from domains.users.exceptions import (
    INVALID_ACCESS_TOKEN,
    INVALID_CREDENTIALS,
    INVALID_SESSION,
    InvalidCredentialsError,
    InvalidRefreshTokenError,
)
from domains.users.models import RefreshToken, User
from domains.users.passwords import verify_password
from domains.users.service._accounts import normalize_email, user_roles
from domains.users.tokens import InvalidTokenError, TokenClaims, TokenIssuer, token_digest


class SignIn(FrozenInput):
    """Credentials to sign in with: an e-mail address in any case, and a password."""

    email: str
    password: str


class TokenRefresh(FrozenInput):
    """The latest refresh token of a session, to exchange for a new pair."""

    refresh_token: str


class TokenRevoke(FrozenInput):
    """Any refresh token of the session to end."""

    refresh_token: str


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    user: User
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str


async def _issue_tokens(
    session: AsyncSession, user: User, *, issuer: TokenIssuer, family_id: str, now: datetime
) -> IssuedTokens:
    roles = user_roles(user)
    access, access_expires_at = issuer.issue_access(user.id, roles, now=now)
    refresh, refresh_expires_at = issuer.issue_refresh(user.id, roles, now=now)
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=token_digest(refresh),
            created_at=now,
            expires_at=refresh_expires_at,
        )
    )
    await session.flush()
    return IssuedTokens(user, access, access_expires_at, refresh)


@dataclass(frozen=True, slots=True)
class SignInAccount:
    """What checking a sign-in's password needs, read before the check; `user_id` is None for an unknown address."""

    user_id: int | None
    password_hash: str | None
    is_active: bool


UNKNOWN_ACCOUNT = SignInAccount(user_id=None, password_hash=None, is_active=False)


@dataclass(frozen=True, slots=True)
class VerifiedSignIn:
    """A sign-in whose password matched `verified_hash`; `new_hash` replaces it when its parameters are outdated."""

    user_id: int
    verified_hash: str
    new_hash: str | None


async def find_sign_in_account(session: AsyncSession, *, input: SignIn) -> SignInAccount:
    """Read what signing in with this address needs (a short read; the password is checked after it)."""
    user = await users_repository.get_user_by_email(session, normalize_email(input.email))
    if user is None:
        return UNKNOWN_ACCOUNT
    return SignInAccount(user_id=user.id, password_hash=user.password_hash, is_active=user.is_active)


async def check_sign_in_password(*, account: SignInAccount, input: SignIn) -> VerifiedSignIn:
    """Check a sign-in's password with exactly one argon2 verification; hold no database connection meanwhile.

    An unknown address, a wrong password and a deactivated account get the same answer in
    about the same time: one verification each (against a dummy hash when there is none).
    """
    matched, new_hash = await verify_password(input.password, account.password_hash)
    if account.user_id is None or account.password_hash is None or not matched or not account.is_active:
        raise InvalidCredentialsError(INVALID_CREDENTIALS)
    return VerifiedSignIn(user_id=account.user_id, verified_hash=account.password_hash, new_hash=new_hash)


async def create_tokens(
    session: AsyncSession, *, issuer: TokenIssuer, sign_in: VerifiedSignIn, now: datetime
) -> IssuedTokens:
    """Finish a verified sign-in: store a fresher hash if one was made, and start a new refresh-token family."""
    if sign_in.new_hash is not None:
        # Only over the hash that was verified: a hash written meanwhile (a concurrent sign-in's rehash) stays.
        await users_repository.replace_password_hash(
            session, sign_in.user_id, old=sign_in.verified_hash, new=sign_in.new_hash
        )
    user = await users_repository.get_user(session, sign_in.user_id)
    if user is None or not user.is_active:
        # Deleted or deactivated while the password was being checked.
        raise InvalidCredentialsError(INVALID_CREDENTIALS)
    return await _issue_tokens(session, user, issuer=issuer, family_id=str(uuid.uuid4()), now=now)


async def _stored_refresh_token(session: AsyncSession, issuer: TokenIssuer, token: str) -> RefreshToken:
    try:
        claims = issuer.verify_refresh(token)
    except InvalidTokenError as exc:
        raise InvalidRefreshTokenError(INVALID_SESSION) from exc
    stored = await users_repository.get_refresh_token_by_hash(session, token_digest(token))
    if stored is None or stored.user_id != claims.user_id:
        raise InvalidRefreshTokenError(INVALID_SESSION)
    return stored


async def refresh_tokens(
    session: AsyncSession, *, issuer: TokenIssuer, input: TokenRefresh, now: datetime
) -> IssuedTokens | InvalidRefreshTokenError:
    """Rotate a refresh token: the presented one stops working and a new pair is issued in its family.

    Presenting a token that was already rotated means it leaked: the whole family is revoked. That
    revocation must commit, so this failure is returned instead of raised (raising rolls back).
    """
    stored = await _stored_refresh_token(session, issuer, input.refresh_token)
    if stored.revoked_at is not None:
        raise InvalidRefreshTokenError(INVALID_SESSION)
    if not await users_repository.mark_refresh_token_used(session, stored.id, now=now):
        await users_repository.revoke_refresh_family(session, stored.family_id, now=now)
        return InvalidRefreshTokenError(INVALID_SESSION)
    user = await users_repository.get_user(session, stored.user_id)
    if user is None or not user.is_active:
        raise InvalidRefreshTokenError(INVALID_SESSION)
    return await _issue_tokens(session, user, issuer=issuer, family_id=stored.family_id, now=now)


async def revoke_tokens(session: AsyncSession, *, issuer: TokenIssuer, input: TokenRevoke, now: datetime) -> None:
    """Sign out: revoke the whole family of a refresh token."""
    stored = await _stored_refresh_token(session, issuer, input.refresh_token)
    await users_repository.revoke_refresh_family(session, stored.family_id, now=now)


def verify_bearer(*, issuer: TokenIssuer, token: str) -> TokenClaims:
    """The claims of an access token this service signed and that is valid now; UnauthenticatedError if not.

    Needs no database: a forged or expired token is refused before anything is read.
    """
    try:
        return issuer.verify_access(token)
    except InvalidTokenError as exc:
        raise UnauthenticatedError(INVALID_ACCESS_TOKEN) from exc


async def authenticate_bearer(session: AsyncSession, *, issuer: TokenIssuer, token: str) -> Principal:
    """Turn an access token into its user's principal, with the user's current roles."""
    return await authenticate_claims(session, verify_bearer(issuer=issuer, token=token))


async def authenticate_claims(session: AsyncSession, claims: TokenClaims) -> Principal:
    """Turn verified access-token claims into their user's principal, with the user's current roles."""
    user = await users_repository.get_user(session, claims.user_id)
    # Checked on every request, so deactivating an account (or deleting it) locks it out at once.
    if user is None or not user.is_active:
        raise UnauthenticatedError(INVALID_ACCESS_TOKEN)
    return Principal(user_id=user.id, roles=user_roles(user), expires_at=claims.expires_at)


async def purge_expired_refresh_tokens(session: AsyncSession, principal: Principal, *, expired_before: datetime) -> int:
    """Delete refresh tokens that expired before a time (the system's maintenance); return how many.

    Kept a while after expiry so that a reused token still ends its session until then.
    """
    require_system(principal)
    return await users_repository.delete_refresh_tokens_expired_before(session, expired_before)
