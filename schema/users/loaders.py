"""Per-request loaders of users and API keys."""

from collections.abc import Sequence
from functools import cached_property
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


class UsersLoaders:
    """The accounts' loaders of one request, each built on first use (most requests use one of two)."""

    def __init__(self, db: RequestDb, principal: Principal) -> None:
        self._db = db
        self._principal = principal

    @classmethod
    def create(cls, db: RequestDb, principal: Principal) -> Self:
        """Fresh loaders for one request (the API key loader sees only what the principal may)."""
        return cls(db, principal)

    @cached_property
    def user_by_id(self) -> UserByIdLoader:
        return UserByIdLoader(self._db, users_repository.get_users_by_ids, _user_id)

    @cached_property
    def api_key_by_id(self) -> ApiKeyByIdLoader:
        principal = self._principal

        async def api_keys(session: AsyncSession, ids: Sequence[int]) -> list[models.ApiKeyView]:
            return await users_repository.get_api_keys_by_ids(session, principal, ids)

        return ApiKeyByIdLoader(self._db, api_keys, _api_key_id)
