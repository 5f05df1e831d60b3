"""Inputs of account mutations."""

from datetime import datetime

import strawberry

from domains.common.ids import decode_typed_id
from domains.common.principal import Principal
from domains.common.validation import validated
from domains.users import service as users_service
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

    def to_input(self) -> users_service.AccountRegister:
        return users_service.AccountRegister.from_data(
            {"email": self.email, "password": self.password, "name": self.name}
        )


@strawberry.input(description="Credentials to sign in with.")
class TokenCreateInput:
    email: str = strawberry.field(description="The account's e-mail address, in any case.")
    password: str = strawberry.field(description="The account's password.")

    def to_input(self) -> users_service.SignIn:
        return validated(users_service.SignIn, {"email": self.email, "password": self.password})


@strawberry.input(description="A refresh token to exchange for a new token pair.")
class TokenRefreshInput:
    refresh_token: str = strawberry.field(description="The latest refresh token; it stops working once used.")

    def to_input(self) -> users_service.TokenRefresh:
        return validated(users_service.TokenRefresh, {"refreshToken": self.refresh_token})


@strawberry.input(description="A refresh token whose session to end.")
class TokenRevokeInput:
    refresh_token: str = strawberry.field(description="Any refresh token of the session; the whole session ends.")

    def to_input(self) -> users_service.TokenRevoke:
        return validated(users_service.TokenRevoke, {"refreshToken": self.refresh_token})


@strawberry.input(description="A new API key for the signed-in user.")
class ApiKeyCreateInput:
    name: str = strawberry.field(description=f"What the key is for, 1 to {NAME_MAX_LENGTH} characters.")
    roles: list[Role] | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Roles the key grants, each one you hold; default: all of yours."
    )
    expires_at: datetime | None = strawberry.field(
        default=None, description="When the key stops working (in the future); default: never."
    )

    def to_input(self, owner: Principal) -> users_service.ApiKeyCreate:
        data = {"name": self.name, "roles": self.roles, "expiresAt": self.expires_at}
        return users_service.ApiKeyCreate.from_data(data, owner=owner)


@strawberry.input(description="The API key to revoke.")
class ApiKeyRevokeInput:
    api_key_id: strawberry.ID = strawberry.field(description="Global id of one of your keys (admins: any key).")

    def to_input(self) -> users_service.ApiKeyRevoke:
        return validated(users_service.ApiKeyRevoke, {"apiKeyId": decode_typed_id(self.api_key_id, "ApiKey")})


@strawberry.input(description="The roles to give a user.")
class UserRolesSetInput:
    user_id: strawberry.ID = strawberry.field(description="Global id of the user.")
    roles: list[Role] = strawberry.field(  # type: ignore[valid-type]
        description="The user's new roles, replacing the old ones; at least one."
    )

    def to_input(self) -> users_service.UserRolesSet:
        user_id = decode_typed_id(self.user_id, "User")
        return validated(users_service.UserRolesSet, {"userId": user_id, "roles": self.roles})
