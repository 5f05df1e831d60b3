"""Authorization for GraphQL fields: Strawberry permission classes, declared on the field.

    @strawberry.field(extensions=requires(Role.ADMIN))          # UNAUTHENTICATED / FORBIDDEN
    @strawberry.field(extensions=visible_to(IsSelfOrStaff()))   # null for everyone else

Ownership of rows ("customers see their own orders") is not here: it lives in the repository
statements, so typed fields and `node`/`nodes` share it.
"""

from typing import Any, Protocol

from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types.field import StrawberryField

from domains.common.exceptions import FORBIDDEN_MESSAGE, SIGN_IN_REQUIRED, ForbiddenError, UnauthenticatedError
from domains.common.principal import Role
from domains.users import service as users_service
from domains.users.exceptions import API_KEY_REFUSED
from schema.context import Info


class IsAuthenticated(BasePermission):
    message = SIGN_IN_REQUIRED

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal.is_authenticated

    def on_unauthorized(self) -> None:
        raise UnauthenticatedError(SIGN_IN_REQUIRED)


class HasRole(BasePermission):
    """The principal holds `role` (or a role that includes it)."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self.message: str = f"{FORBIDDEN_MESSAGE} ({role})"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal.has_role(self.role)

    def on_unauthorized(self) -> None:
        raise ForbiddenError(self.message or FORBIDDEN_MESSAGE)


class _Account(Protocol):
    pk: int
    proven_by_caller: bool


class IsSelfOrStaff(BasePermission):
    """The field's object is the caller's own account, or the principal is staff."""

    message = FORBIDDEN_MESSAGE

    def has_permission(self, source: _Account, info: Info, **kwargs: Any) -> bool:
        return source.proven_by_caller or users_service.can_view_private_fields(info.context.principal, source.pk)


class IsUserNotApiKey(BasePermission):
    """The principal signed in as a user, not with an API key."""

    message = API_KEY_REFUSED

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal.api_key_prefix is None

    def on_unauthorized(self) -> None:
        raise ForbiddenError(API_KEY_REFUSED)


def requires(role: Role | None = None, *, users_only: bool = False) -> list[FieldExtension]:
    """Field extensions refusing anonymous callers (UNAUTHENTICATED), and (FORBIDDEN) those without `role` or,
    with `users_only`, API keys."""
    permissions: list[BasePermission] = [IsAuthenticated()]
    if role is not None:
        permissions.append(HasRole(role))
    if users_only:
        permissions.append(IsUserNotApiKey())
    return [PermissionExtension(permissions, use_directives=False)]


class _NullWhenRefused(PermissionExtension):
    def apply(self, field: StrawberryField) -> None:
        super().apply(field)
        # Strawberry answers an optional list with []; SPEC says null ("not yours to see", not "none").
        self.return_empty_list = False


def visible_to(*permissions: BasePermission) -> list[FieldExtension]:
    """Field extensions answering null to anyone the permissions refuse; the field must be nullable."""
    return [_NullWhenRefused(list(permissions), use_directives=False, fail_silently=True)]
