"""Per-request loaders of users and API keys."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.principal import Principal
from domains.users import models
from domains.users import repository as users_repository
from schema.loaders import RowByKeyLoader
from schema.unit_of_work import RequestDb


class UserByIdLoader(RowByKeyLoader[int, models.UserView]):
    pass


class ApiKeyByIdLoader(RowByKeyLoader[int, models.ApiKeyView]):
    pass


def _user_id(row: models.UserView) -> int:
    return row.id


def _api_key_id(row: models.ApiKeyView) -> int:
    return row.id


@dataclass(frozen=True, slots=True)
class UsersLoaders:
    user_by_id: UserByIdLoader
    api_key_by_id: ApiKeyByIdLoader

    @classmethod
    def create(cls, db: RequestDb, principal: Principal) -> Self:
        """Build fresh loaders for one request (the API key loader sees only what the principal may)."""

        async def api_keys(session: AsyncSession, ids: Sequence[int]) -> list[models.ApiKeyView]:
            return await users_repository.get_api_keys_by_ids(session, principal, ids)

        return cls(
            user_by_id=UserByIdLoader(db, users_repository.get_users_by_ids, _user_id),
            api_key_by_id=ApiKeyByIdLoader(db, api_keys, _api_key_id),
        )
