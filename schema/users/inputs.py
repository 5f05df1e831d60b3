"""Inputs of account mutations."""

from datetime import datetime
from typing import Any

import strawberry

from domains.common.ids import decode_typed_id
from domains.common.principal import Role as RoleValue
from domains.users.service import EMAIL_MAX_LENGTH, NAME_MAX_LENGTH, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from schema.users.types import Role

PASSWORD_RULES = (
    f"{PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters, not containing the e-mail address or the name."
)


@strawberry.input(description="A new customer account.")
class AccountRegisterInput:
    email: str = strawberry.field(
        description=f"E-mail address (at most {EMAIL_MAX_LENGTH} characters), unique regardless of case."
    )
    password: str = strawberry.field(description=f"The password: {PASSWORD_RULES}")
    name: str = strawberry.field(description=f"Display name, 1 to {NAME_MAX_LENGTH} characters.")

    def to_command(self) -> dict[str, Any]:
        return {"email": self.email, "password": self.password, "name": self.name}


@strawberry.input(description="Credentials to sign in with.")
class TokenCreateInput:
    email: str = strawberry.field(description="The account's e-mail address, in any case.")
    password: str = strawberry.field(description="The account's password.")

    def to_command(self) -> dict[str, Any]:
        return {"email": self.email, "password": self.password}


@strawberry.input(description="A refresh token to exchange for a new token pair.")
class TokenRefreshInput:
    refresh_token: str = strawberry.field(description="The latest refresh token; it stops working once used.")

    def to_command(self) -> dict[str, Any]:
        return {"refresh_token": self.refresh_token}


@strawberry.input(description="A refresh token whose session to end.")
class TokenRevokeInput:
    refresh_token: str = strawberry.field(description="Any refresh token of the session; the whole session ends.")

    def to_command(self) -> dict[str, Any]:
        return {"refresh_token": self.refresh_token}


@strawberry.input(description="A new API key for the signed-in user.")
class ApiKeyCreateInput:
    name: str = strawberry.field(description=f"What the key is for, 1 to {NAME_MAX_LENGTH} characters.")
    roles: list[Role] | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Roles the key grants, each one you hold; default: all of yours."
    )
    expires_at: datetime | None = strawberry.field(
        default=None, description="When the key stops working (in the future); default: never."
    )

    def to_command(self) -> dict[str, Any]:
        roles = [RoleValue(role) for role in self.roles] if self.roles is not None else None
        return {"name": self.name, "roles": roles, "expires_at": self.expires_at}


@strawberry.input(description="The API key to revoke.")
class ApiKeyRevokeInput:
    api_key_id: strawberry.ID = strawberry.field(description="Global id of one of your keys (admins: any key).")

    def to_command(self) -> dict[str, Any]:
        return {"api_key_id": decode_typed_id(self.api_key_id, "ApiKey")}


@strawberry.input(description="The roles to give a user.")
class UserRolesSetInput:
    user_id: strawberry.ID = strawberry.field(description="Global id of the user.")
    roles: list[Role] = strawberry.field(  # type: ignore[valid-type]
        description="The user's new roles, replacing the old ones; at least one."
    )

    def to_command(self) -> dict[str, Any]:
        return {"user_id": decode_typed_id(self.user_id, "User"), "roles": [RoleValue(role) for role in self.roles]}
