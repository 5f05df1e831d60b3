"""Principals for tests: real accounts in the test database, with credentials made by the app's own code."""

from dataclasses import dataclass, field
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.base import utcnow
from domains.common.principal import Principal, Role
from domains.users import models as users_models
from domains.users import service as users_service
from domains.users.tokens import TokenIssuer
from tests import factories


@dataclass(frozen=True)
class Caller:
    """Who sends a request in a test, and the headers that say so."""

    user_id: int | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Account(Caller):
    """A caller with its account: the user row, its API key when it calls with one, and its principal."""

    user: users_models.User
    key: users_models.ApiKey | None = None
    roles: frozenset[Role]

    @property
    def principal(self) -> Principal:
        """Who the core sees: the user with the roles this caller's credential grants."""
        return Principal(user_id=self.user.id, roles=self.roles)


ANONYMOUS = Caller(user_id=None)


def _roles(user: users_models.User) -> frozenset[Role]:
    return frozenset(Role(role) for role in user.roles)


def bearer(app: FastAPI, user: users_models.User) -> Account:
    """A caller signed in as `user` with a fresh access token from the app's issuer."""
    return signed_in(app.state.token_issuer, user)


def signed_in(issuer: TokenIssuer, user: users_models.User) -> Account:
    """An account signed in as `user` with a fresh access token from `issuer`."""
    token, _ = issuer.issue_access(user.id, _roles(user), now=utcnow())
    return Account(user_id=user.id, headers={"Authorization": f"Bearer {token}"}, user=user, roles=_roles(user))


async def api_key(
    session: AsyncSession,
    owner: users_models.User,
    *,
    roles: tuple[Role, ...],
    expires_at: datetime | None = None,
) -> tuple[users_models.ApiKey, Account]:
    """Create an API key through the service, as its owner would; return it with a caller using it."""
    principal = Principal(user_id=owner.id, roles=_roles(owner))
    key, secret = await users_service.create_api_key(
        session, principal, input=users_service.ApiKeyCreate(name="test key", roles=roles, expires_at=expires_at)
    )
    caller = Account(user_id=owner.id, headers={"X-API-Key": secret}, user=owner, key=key, roles=frozenset(roles))
    return key, caller


@dataclass(frozen=True)
class Cast:
    """The principals of the permission rules: every role, a second customer, and a narrowed API key."""

    customer: users_models.User
    other_customer: users_models.User
    staff: users_models.User
    admin: users_models.User
    callers: dict[str, Caller]


async def cast(app: FastAPI, session: AsyncSession) -> Cast:
    """Create the accounts of the permission matrix; the API key belongs to the admin but grants only STAFF."""
    customer = await factories.create_user(session, name="Cus Tomer")
    other = await factories.create_user(session, name="Oth Er")
    staff = await factories.create_user(session, name="Sta Ff", roles=("STAFF",))
    admin = await factories.create_user(session, name="Ad Min", roles=("ADMIN",))
    _, narrowed = await api_key(session, admin, roles=(Role.STAFF,))
    await session.commit()
    callers = {
        "anonymous": ANONYMOUS,
        "customer": bearer(app, customer),
        "other_customer": bearer(app, other),
        "staff": bearer(app, staff),
        "admin": bearer(app, admin),
        "admin_key_as_staff": narrowed,
    }
    return Cast(customer, other, staff, admin, callers)
