"""Root mutation fields of accounts and access: translate the input, call the service, map the result."""

from typing import Annotated

import strawberry

from domains.common.base import utcnow
from domains.common.exceptions import DomainError
from domains.common.principal import Role
from domains.users import models
from domains.users import service as users_service
from domains.users.passwords import hashing_slot
from schema.context import Context, Info
from schema.errors import user_errors_from
from schema.permissions import requires
from schema.users.inputs import (
    AccountRegisterInput,
    ApiKeyCreateInput,
    ApiKeyRevokeInput,
    TokenCreateInput,
    TokenRefreshInput,
    TokenRevokeInput,
    UserRolesSetInput,
)
from schema.users.payloads import (
    AccountRegisterPayload,
    ApiKeyCreatePayload,
    ApiKeyRevokePayload,
    TokenCreatePayload,
    TokenRefreshPayload,
    TokenRevokePayload,
    UserRolesSetPayload,
)
from schema.users.types import ApiKey, User

INPUT = strawberry.argument(description="What to do; see the input type.")


def _user(info: Info, user: models.User, *, proven_by_caller: bool = False) -> User:
    # The write changed this row: refresh the request's loader so nested fields never see the old one.
    view = models.view_of(models.UserView, user)
    info.context.loaders.users.user_by_id.clear(view.id).prime(view.id, view)
    account = User.from_model(view)
    account.proven_by_caller = proven_by_caller
    return account


def _api_key(info: Info, api_key: models.ApiKey) -> ApiKey:
    view = models.view_of(models.ApiKeyView, api_key)
    info.context.loaders.users.api_key_by_id.clear(view.id).prime(view.id, view)
    return ApiKey.from_model(view)


async def _sign_in(context: Context, credentials: users_service.SignIn) -> users_service.IssuedTokens:
    # A short read, the argon2 check (tens of milliseconds) with no pooled connection checked out,
    # then a short transaction; a flood waits for hashing slots holding nothing, not at the pool.
    await context.db.release()
    async with hashing_slot():
        async with context.db.read() as session:
            account = await users_service.find_sign_in_account(session, input=credentials)
        await context.db.release()
        sign_in = await users_service.check_sign_in_password(account=account, input=credentials)
        async with context.db.transaction() as session:
            return await users_service.create_tokens(
                session, issuer=context.token_issuer, sign_in=sign_in, now=utcnow()
            )


@strawberry.type
class UsersMutation:
    @strawberry.mutation(
        description="Create a customer account. userErrors: REQUIRED, INVALID, TOO_SHORT, TOO_LONG, "
        "PASSWORD_TOO_SIMILAR, ALREADY_EXISTS."
    )
    async def account_register(
        self, info: Info, input: Annotated[AccountRegisterInput, INPUT]
    ) -> AccountRegisterPayload:
        context = info.context
        await context.db.release()  # hashing takes tens of milliseconds: hold no pooled connection through it
        try:
            async with hashing_slot():
                account = await users_service.prepare_account(input=input.to_input())
                async with context.db.transaction() as session:
                    user = await users_service.register_account(session, account=account)
        except DomainError as exc:
            return AccountRegisterPayload(user=None, user_errors=user_errors_from(exc))
        return AccountRegisterPayload(user=_user(info, user, proven_by_caller=True), user_errors=[])

    @strawberry.mutation(
        description="Sign in: an access token and a refresh token. An unknown e-mail address and a wrong password "
        "get the same INVALID_CREDENTIALS answer. Limited per client IP and e-mail address (RATE_LIMITED)."
    )
    async def token_create(self, info: Info, input: Annotated[TokenCreateInput, INPUT]) -> TokenCreatePayload:
        context = info.context
        await context.rate_limits.hit_login(client_ip=context.client_ip, email=input.email)
        try:
            issued = await _sign_in(context, input.to_input())
        except DomainError as exc:
            return TokenCreatePayload(user_errors=user_errors_from(exc))
        return TokenCreatePayload(
            access_token=issued.access_token,
            refresh_token=issued.refresh_token,
            access_token_expires_at=issued.access_token_expires_at,
            user=_user(info, issued.user, proven_by_caller=True),
        )

    @strawberry.mutation(
        description="Exchange a refresh token for a new pair. Each refresh token works once: presenting one again "
        "ends its whole session. userErrors: INVALID_TOKEN."
    )
    async def token_refresh(self, info: Info, input: Annotated[TokenRefreshInput, INPUT]) -> TokenRefreshPayload:
        context = info.context
        issued: users_service.IssuedTokens | DomainError
        try:
            async with context.db.transaction() as session:
                issued = await users_service.refresh_tokens(
                    session, issuer=context.token_issuer, input=input.to_input(), now=utcnow()
                )
        except DomainError as exc:
            issued = exc
        if isinstance(issued, DomainError):
            return TokenRefreshPayload(user_errors=user_errors_from(issued))
        return TokenRefreshPayload(
            access_token=issued.access_token,
            refresh_token=issued.refresh_token,
            access_token_expires_at=issued.access_token_expires_at,
        )

    @strawberry.mutation(description="Sign out: end the session of a refresh token. userErrors: INVALID_TOKEN.")
    async def token_revoke(self, info: Info, input: Annotated[TokenRevokeInput, INPUT]) -> TokenRevokePayload:
        context = info.context
        try:
            async with context.db.transaction() as session:
                await users_service.revoke_tokens(
                    session, issuer=context.token_issuer, input=input.to_input(), now=utcnow()
                )
        except DomainError as exc:
            return TokenRevokePayload(revoked=False, user_errors=user_errors_from(exc))
        return TokenRevokePayload(revoked=True, user_errors=[])

    @strawberry.mutation(
        description="Create an API key for yourself; its secret is shown once. Signed-in users only, not API keys "
        "(a key could otherwise outlive its own expiry). userErrors: REQUIRED, TOO_LONG, ROLE_NOT_HELD, INVALID.",
        extensions=requires(users_only=True),
    )
    async def api_key_create(self, info: Info, input: Annotated[ApiKeyCreateInput, INPUT]) -> ApiKeyCreatePayload:
        principal = info.context.principal
        try:
            api_key_create = input.to_input(owner=principal)
            async with info.context.db.transaction() as session:
                api_key, secret = await users_service.create_api_key(session, principal, input=api_key_create)
        except DomainError as exc:
            return ApiKeyCreatePayload(user_errors=user_errors_from(exc))
        return ApiKeyCreatePayload(api_key=_api_key(info, api_key), secret=secret)

    @strawberry.mutation(
        description="Revoke one of your API keys (admins: any key). Signed-in users only. userErrors: NOT_FOUND.",
        extensions=requires(),
    )
    async def api_key_revoke(self, info: Info, input: Annotated[ApiKeyRevokeInput, INPUT]) -> ApiKeyRevokePayload:
        try:
            revoke = input.to_input()
            async with info.context.db.transaction() as session:
                api_key = await users_service.revoke_api_key(
                    session, info.context.principal, input=revoke, now=utcnow()
                )
        except DomainError as exc:
            return ApiKeyRevokePayload(api_key=None, user_errors=user_errors_from(exc))
        return ApiKeyRevokePayload(api_key=_api_key(info, api_key), user_errors=[])

    @strawberry.mutation(
        description="Replace a user's roles. Admins only; an admin cannot remove their own ADMIN role. "
        "userErrors: NOT_FOUND, REQUIRED, CANNOT_REMOVE_OWN_ADMIN.",
        extensions=requires(Role.ADMIN),
    )
    async def user_roles_set(self, info: Info, input: Annotated[UserRolesSetInput, INPUT]) -> UserRolesSetPayload:
        try:
            roles_set = input.to_input()
            async with info.context.db.transaction() as session:
                user = await users_service.set_user_roles(session, info.context.principal, input=roles_set)
        except DomainError as exc:
            return UserRolesSetPayload(user=None, user_errors=user_errors_from(exc))
        return UserRolesSetPayload(user=_user(info, user), user_errors=[])
