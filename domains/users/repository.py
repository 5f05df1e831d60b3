"""SQL for users."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domains.users.models import USER_VIEW_COLUMNS, User, UserView


async def get_users_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[UserView]:
    """Get the users among these ids."""
    return [UserView(*row) for row in await session.execute(select(*USER_VIEW_COLUMNS).where(User.id.in_(ids)))]
