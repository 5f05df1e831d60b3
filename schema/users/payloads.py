"""Payloads of account mutations: the changed object (null on failure) and `userErrors`."""

from datetime import datetime

import strawberry

from schema.errors import USER_ERRORS, UserError
from schema.users.types import ApiKey, User


@strawberry.type(description="The result of `accountRegister`.")
class AccountRegisterPayload:
    user: User | None = strawberry.field(description="The new account; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of `tokenCreate`: a new session.")
class TokenCreatePayload:
    access_token: str | None = strawberry.field(
        default=None, description="JWT for `Authorization: Bearer …`; short-lived."
    )
    refresh_token: str | None = strawberry.field(
        default=None, description="Exchange it with `tokenRefresh` for a new pair; works once."
    )
    access_token_expires_at: datetime | None = strawberry.field(
        default=None, description="When the access token expires."
    )
    user: User | None = strawberry.field(default=None, description="The signed-in account.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The result of `tokenRefresh`: the session's next token pair.")
class TokenRefreshPayload:
    access_token: str | None = strawberry.field(default=None, description="New access token.")
    refresh_token: str | None = strawberry.field(
        default=None, description="New refresh token; the one sent no longer works."
    )
    access_token_expires_at: datetime | None = strawberry.field(
        default=None, description="When the access token expires."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The result of `tokenRevoke`.")
class TokenRevokePayload:
    revoked: bool = strawberry.field(description="Whether the session is now ended.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of `apiKeyCreate`.")
class ApiKeyCreatePayload:
    api_key: ApiKey | None = strawberry.field(default=None, description="The new key; null when refused.")
    secret: str | None = strawberry.field(
        default=None, description="The full key for `X-API-Key`. Shown this once: only its hash is stored."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The result of `apiKeyRevoke`.")
class ApiKeyRevokePayload:
    api_key: ApiKey | None = strawberry.field(description="The revoked key; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of `userRolesSet`.")
class UserRolesSetPayload:
    user: User | None = strawberry.field(description="The user with the new roles; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)
