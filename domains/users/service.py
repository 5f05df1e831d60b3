"""Use cases of accounts and access: registration, tokens, API keys, roles, and authenticating a request."""

import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.exceptions import (
    SIGN_IN_REQUIRED,
    DomainError,
    ErrorCode,
    FieldProblem,
    InvalidInputError,
    NotFoundError,
    UnauthenticatedError,
)
from domains.common.principal import Principal, Role, effective_roles
from domains.users import repository as users_repository
from domains.users.exceptions import (
    INVALID_ACCESS_TOKEN,
    INVALID_API_KEY,
    INVALID_CREDENTIALS,
    INVALID_SESSION,
    CannotRemoveOwnAdminError,
    EmailTakenError,
    InvalidCredentialsError,
    InvalidRefreshTokenError,
)
from domains.users.models import ApiKey, RefreshToken, User
from domains.users.passwords import hash_password, verify_password
from domains.users.tokens import InvalidTokenError, TokenIssuer, token_digest

EMAIL_MAX_LENGTH = 254
NAME_MAX_LENGTH = 120
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128
API_KEY_PREFIX_MARK = "sfk_"


def can_view_private_fields(principal: Principal, user_id: int) -> bool:
    """Tell whether the principal may see a user's e-mail, roles and orders: the user or staff."""
    return principal.user_id == user_id or principal.is_staff


def _length_problems(value: str, field: tuple[str, ...], label: str, maximum: int) -> list[FieldProblem]:
    if not value:
        return [FieldProblem(ErrorCode.REQUIRED, f"Enter {label}.", field)]
    if len(value) > maximum:
        return [FieldProblem(ErrorCode.TOO_LONG, f"{label.capitalize()} takes at most {maximum} characters.", field)]
    return []


def normalize_email(email: str) -> str:
    """Return the stored form of an e-mail address: trimmed and lower-cased."""
    return email.strip().lower()


def _email_problems(email: str) -> list[FieldProblem]:
    field = ("input", "email")
    problems = _length_problems(email, field, "an e-mail address", EMAIL_MAX_LENGTH)
    if problems:
        return problems
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return [FieldProblem(ErrorCode.INVALID, "Enter a valid e-mail address.", field)]
    return []


def _password_problems(password: str, *, email: str, name: str) -> list[FieldProblem]:
    field = ("input", "password")
    if len(password) < PASSWORD_MIN_LENGTH:
        return [FieldProblem(ErrorCode.TOO_SHORT, f"Use at least {PASSWORD_MIN_LENGTH} characters.", field)]
    if len(password) > PASSWORD_MAX_LENGTH:
        return [FieldProblem(ErrorCode.TOO_LONG, f"Use at most {PASSWORD_MAX_LENGTH} characters.", field)]
    lowered = password.lower()
    personal = [part for part in (email.split("@")[0], email, name.strip().lower()) if len(part) >= 3]
    if any(part in lowered for part in personal):
        return [FieldProblem(ErrorCode.PASSWORD_TOO_SIMILAR, "Do not use your e-mail address or name.", field)]
    return []


@dataclass(frozen=True, slots=True)
class NewAccount:
    """A registration whose input passed every check, with its password already hashed."""

    email: str
    name: str
    password_hash: str


async def prepare_account(principal: Principal, *, email: str, password: str, name: str) -> NewAccount:
    """Check a registration's input and hash its password; hold no database connection while awaiting it."""
    email, name = normalize_email(email), name.strip()
    problems = [
        *_email_problems(email),
        *_password_problems(password, email=email, name=name),
        *_length_problems(name, ("input", "name"), "a name", NAME_MAX_LENGTH),
    ]
    if problems:
        raise InvalidInputError(problems)
    return NewAccount(email=email, name=name, password_hash=await hash_password(password))


async def register_account(session: AsyncSession, principal: Principal, *, account: NewAccount) -> User:
    """Create a customer account; the unique constraint keeps e-mail addresses unique regardless of case."""
    user = User(
        email=account.email, name=account.name, password_hash=account.password_hash, roles=[Role.CUSTOMER.value]
    )
    try:
        # A savepoint: a taken address (also by a concurrent registration) fails here without ending the transaction.
        async with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:
        raise EmailTakenError from exc
    return user


def user_roles(user: User) -> frozenset[Role]:
    """Return the roles stored on a user."""
    return frozenset(Role(role) for role in user.roles)


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


async def find_sign_in_account(session: AsyncSession, principal: Principal, *, email: str) -> SignInAccount:
    """Read what signing in with this address needs (a short read; the password is checked after it)."""
    user = await users_repository.get_user_by_email(session, normalize_email(email))
    if user is None:
        return UNKNOWN_ACCOUNT
    return SignInAccount(user_id=user.id, password_hash=user.password_hash, is_active=user.is_active)


async def check_sign_in_password(principal: Principal, *, account: SignInAccount, password: str) -> VerifiedSignIn:
    """Check a sign-in's password with exactly one argon2 verification; hold no database connection meanwhile.

    An unknown address, a wrong password and a deactivated account get the same answer in
    about the same time: one verification each (against a dummy hash when there is none).
    """
    matched, new_hash = await verify_password(password, account.password_hash)
    if account.user_id is None or account.password_hash is None or not matched or not account.is_active:
        raise InvalidCredentialsError(INVALID_CREDENTIALS)
    return VerifiedSignIn(user_id=account.user_id, verified_hash=account.password_hash, new_hash=new_hash)


async def create_tokens(
    session: AsyncSession, principal: Principal, *, issuer: TokenIssuer, sign_in: VerifiedSignIn, now: datetime
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
    session: AsyncSession, principal: Principal, *, issuer: TokenIssuer, refresh_token: str, now: datetime
) -> IssuedTokens | InvalidRefreshTokenError:
    """Rotate a refresh token: the presented one stops working and a new pair is issued in its family.

    Presenting a token that was already rotated means it leaked: the whole family is revoked. That
    revocation must commit, so this failure is returned instead of raised (raising rolls back).
    """
    stored = await _stored_refresh_token(session, issuer, refresh_token)
    if stored.revoked_at is not None:
        raise InvalidRefreshTokenError(INVALID_SESSION)
    if not await users_repository.mark_refresh_token_used(session, stored.id, now=now):
        await users_repository.revoke_refresh_family(session, stored.family_id, now=now)
        return InvalidRefreshTokenError(INVALID_SESSION)
    user = await users_repository.get_user(session, stored.user_id)
    if user is None or not user.is_active:
        raise InvalidRefreshTokenError(INVALID_SESSION)
    return await _issue_tokens(session, user, issuer=issuer, family_id=stored.family_id, now=now)


async def revoke_tokens(
    session: AsyncSession, principal: Principal, *, issuer: TokenIssuer, refresh_token: str, now: datetime
) -> None:
    """Sign out: revoke the whole family of a refresh token."""
    stored = await _stored_refresh_token(session, issuer, refresh_token)
    await users_repository.revoke_refresh_family(session, stored.family_id, now=now)


async def authenticate_bearer(session: AsyncSession, *, issuer: TokenIssuer, token: str) -> Principal:
    """Turn an access token into its user's principal, with the user's current roles."""
    try:
        claims = issuer.verify_access(token)
    except InvalidTokenError as exc:
        raise UnauthenticatedError(INVALID_ACCESS_TOKEN) from exc
    user = await users_repository.get_user(session, claims.user_id)
    # Checked on every request, so deactivating an account (or deleting it) locks it out at once.
    if user is None or not user.is_active:
        raise UnauthenticatedError(INVALID_ACCESS_TOKEN)
    return Principal(user_id=user.id, roles=user_roles(user))


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


def _api_key_problems(
    principal: Principal, *, name: str, roles: Sequence[Role], expires_at: datetime | None, now: datetime
) -> list[FieldProblem]:
    problems = _length_problems(name, ("input", "name"), "a name", NAME_MAX_LENGTH)
    held = effective_roles(principal.roles)
    problems += [
        FieldProblem(ErrorCode.ROLE_NOT_HELD, f"You do not hold the {role} role.", ("input", "roles", str(index)))
        for index, role in enumerate(roles)
        if role not in held
    ]
    if expires_at is not None and expires_at <= now:
        problems.append(FieldProblem(ErrorCode.INVALID, "The expiry must lie in the future.", ("input", "expiresAt")))
    return problems


async def create_api_key(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    roles: Sequence[Role] | None,
    expires_at: datetime | None,
    now: datetime,
) -> tuple[ApiKey, str]:
    """Create an API key for the principal's user; return it with its full key, which is never stored."""
    if principal.user_id is None:
        raise UnauthenticatedError(SIGN_IN_REQUIRED)
    name = name.strip()
    granted = list(dict.fromkeys(roles)) if roles is not None else sorted(principal.roles)
    problems = _api_key_problems(principal, name=name, roles=granted, expires_at=expires_at, now=now)
    if problems:
        raise InvalidInputError(problems)
    prefix, secret = API_KEY_PREFIX_MARK + secrets.token_hex(6), secrets.token_urlsafe(32)
    api_key = ApiKey(
        user_id=principal.user_id,
        name=name,
        prefix=prefix,
        secret_hash=token_digest(secret),
        roles=[role.value for role in granted],
        expires_at=expires_at,
    )
    session.add(api_key)
    await session.flush()
    return api_key, f"{prefix}.{secret}"


async def revoke_api_key(session: AsyncSession, principal: Principal, *, api_key_id: int, now: datetime) -> ApiKey:
    """Revoke one of the principal's keys (an admin: anyone's); revoking twice keeps the first time."""
    api_key = await users_repository.get_api_key(session, principal, api_key_id)
    if api_key is None:
        raise NotFoundError("No such API key.", ("input", "apiKeyId"))
    if api_key.revoked_at is None:
        api_key.revoked_at = now
        await session.flush()
    return api_key


async def set_user_roles(session: AsyncSession, principal: Principal, *, user_id: int, roles: Sequence[Role]) -> User:
    """Replace a user's roles; an admin cannot take their own ADMIN role away."""
    user = await users_repository.get_user(session, user_id)
    if user is None:
        raise NotFoundError("No such user.", ("input", "userId"))
    granted = sorted(set(roles))
    if not granted:
        raise DomainError(ErrorCode.REQUIRED, "Give at least one role.", ("input", "roles"))
    if user.id == principal.user_id and Role.ADMIN not in granted:
        raise CannotRemoveOwnAdminError
    user.roles = [role.value for role in granted]
    await session.flush()
    return user
