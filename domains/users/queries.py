"""Root query fields of accounts."""

import strawberry

from api.context import Info
from domains.users import types as users_types


@strawberry.type
class UsersQuery:
    @strawberry.field(description="The signed-in user; null when anonymous.")
    async def me(self, info: Info) -> users_types.User | None:
        user_id = info.context.principal.user_id
        if user_id is None:
            return None
        row = await info.context.loaders.users.user_by_id.load(user_id)
        return users_types.User.from_optional(row)
