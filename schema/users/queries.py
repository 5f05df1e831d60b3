"""Root query fields of accounts."""

import strawberry

from domains.common.keyset import page_request
from domains.common.principal import Role
from domains.users import repository as users_repository
from domains.users import service as users_service
from schema.cache_control import PRIVATE
from schema.context import Info
from schema.permissions import requires
from schema.relay.connection import After, Before, Connection, First, Last
from schema.users import types as users_types


@strawberry.type
class UsersQuery:
    @strawberry.field(description="The signed-in user; null when anonymous.", directives=[PRIVATE])
    async def me(self, info: Info) -> users_types.User | None:
        user_id = info.context.principal.user_id
        if user_id is None:
            return None
        row = await info.context.loaders.users.user_by_id.load(user_id)
        return users_types.User.from_optional(row)

    @strawberry.field(
        description="Every account, newest first. Admins only.", extensions=requires(Role.ADMIN), directives=[PRIVATE]
    )
    async def users(
        self, info: Info, first: First = None, after: After = None, last: Last = None, before: Before = None
    ) -> Connection[users_types.User]:
        page = page_request(users_repository.USER_ORDERING, first=first, after=after, last=last, before=before)
        db, principal = info.context.db, info.context.principal
        async with db.read() as session:
            rows = await users_service.list_users(session, principal, page=page)

        async def count() -> int:
            async with db.read() as session:
                return await users_service.count_users(session, principal)

        return Connection.from_page(rows, users_types.User.from_model, count)

    @strawberry.field(
        description="Your API keys, newest first (admins: everyone's). Signed-in users only.",
        extensions=requires(),
        directives=[PRIVATE],
    )
    async def api_keys(
        self, info: Info, first: First = None, after: After = None, last: Last = None, before: Before = None
    ) -> Connection[users_types.ApiKey]:
        page = page_request(users_repository.API_KEY_ORDERING, first=first, after=after, last=last, before=before)
        db, principal = info.context.db, info.context.principal
        async with db.read() as session:
            rows = await users_repository.list_api_keys(session, principal, page)

        async def count() -> int:
            async with db.read() as session:
                return await users_repository.count_api_keys(session, principal)

        return Connection.from_page(rows, users_types.ApiKey.from_model, count)
