"""Who is asking: the authenticated subject of a request, free of any HTTP or GraphQL type.

Services check it themselves (`require_role`, `require_user`), whoever calls them: a GraphQL field
(whose permission classes are the first, declarative line), a background task or a script.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domains.common.exceptions import FORBIDDEN_MESSAGE, SIGN_IN_REQUIRED, ForbiddenError, UnauthenticatedError


class Role(StrEnum):
    CUSTOMER = "CUSTOMER"
    STAFF = "STAFF"
    ADMIN = "ADMIN"


ROLE_DESCRIPTIONS = {
    Role.CUSTOMER: "Shops: places orders and writes reviews.",
    Role.STAFF: "Runs the store: manages the catalog and all orders; includes CUSTOMER.",
    Role.ADMIN: "Manages accounts and roles; includes STAFF.",
}

# A role implies every role below it: an admin can do what staff can, staff what customers can.
_IMPLIED: dict[Role, frozenset[Role]] = {
    Role.CUSTOMER: frozenset({Role.CUSTOMER}),
    Role.STAFF: frozenset({Role.CUSTOMER, Role.STAFF}),
    Role.ADMIN: frozenset({Role.CUSTOMER, Role.STAFF, Role.ADMIN}),
}


def effective_roles(roles: frozenset[Role]) -> frozenset[Role]:
    """Return the roles granted, including the ones each role implies."""
    granted: set[Role] = set()
    for role in roles:
        granted |= _IMPLIED[role]
    return frozenset(granted)


@dataclass(frozen=True, slots=True)
class Principal:
    """The subject of a request: anonymous, a user, or a user's API key with its own roles."""

    user_id: int | None = None
    roles: frozenset[Role] = frozenset()
    api_key_prefix: str | None = None
    # When the credential stops vouching for the subject (an access token's expiry); None: it does not expire
    # within a request. A long-lived connection (a WebSocket) ends what the credential authorised at this time.
    expires_at: datetime | None = None
    # The system itself (the task worker's maintenance and delivery jobs): no user, no role, and
    # allowed only what `require_system` guards.
    is_system: bool = False

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    def has_role(self, role: Role) -> bool:
        return role in effective_roles(self.roles)

    @property
    def is_staff(self) -> bool:
        return self.has_role(Role.STAFF)


ANONYMOUS = Principal()
SYSTEM = Principal(is_system=True)


def require_user(principal: Principal) -> int:
    """Return the id of the signed-in user (or the user an API key acts for); refuse anonymous callers."""
    if principal.user_id is None:
        raise UnauthenticatedError(SIGN_IN_REQUIRED)
    return principal.user_id


def require_role(principal: Principal, role: Role) -> int:
    """Return the caller's user id when they hold `role`; UNAUTHENTICATED when anonymous, FORBIDDEN otherwise."""
    user_id = require_user(principal)
    if not principal.has_role(role):
        raise ForbiddenError(f"{FORBIDDEN_MESSAGE} ({role})")
    return user_id


def require_system(principal: Principal) -> None:
    """Refuse anyone but the system: background jobs (delivering, purging) are nobody's request."""
    if not principal.is_system:
        raise ForbiddenError(FORBIDDEN_MESSAGE)
