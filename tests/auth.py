"""Principals for tests: real accounts in the test database, with credentials made by the app's own code."""

from dataclasses import dataclass, field
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.base import utcnow
from domains.common.principal import Principal, Role
from domains.users import models as users_models
from domains.users import service as users_service
from tests import factories


@dataclass(frozen=True)
class Caller:
    """Who sends a request in a test, and the headers that say so."""

    user_id: int | None
    headers: dict[str, str] = field(default_factory=dict)


ANONYMOUS = Caller(user_id=None)


def bearer(app: FastAPI, user: users_models.User) -> Caller:
    """A caller signed in as `user` with a fresh access token from the app's issuer."""
    roles = frozenset(Role(role) for role in user.roles)
    token, _ = app.state.token_issuer.issue_access(user.id, roles, now=utcnow())
    return Caller(user_id=user.id, headers={"Authorization": f"Bearer {token}"})


async def api_key(
    session: AsyncSession,
    owner: users_models.User,
    *,
    roles: tuple[Role, ...],
    expires_at: datetime | None = None,
) -> tuple[users_models.ApiKey, Caller]:
    """Create an API key through the service, as its owner would; return it with a caller using it."""
    principal = Principal(user_id=owner.id, roles=frozenset(Role(role) for role in owner.roles))
    key, secret = await users_service.create_api_key(
        session, principal, input=users_service.ApiKeyCreate(name="test key", roles=roles, expires_at=expires_at)
    )
    return key, Caller(user_id=owner.id, headers={"X-API-Key": secret})


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
