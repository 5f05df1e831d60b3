"""Per-request loaders of users."""

from dataclasses import dataclass
from typing import Self

from api.db import RequestDb
from domains.common.loaders import RowByKeyLoader
from domains.users import models
from domains.users import repository as users_repository


class UserByIdLoader(RowByKeyLoader[int, models.UserView]):
    pass


def _id(row: models.UserView) -> int:
    return row.id


@dataclass(frozen=True, slots=True)
class UsersLoaders:
    user_by_id: UserByIdLoader

    @classmethod
    def create(cls, db: RequestDb) -> Self:
        """Build fresh loaders for one request."""
        return cls(user_by_id=UserByIdLoader(db, users_repository.get_users_by_ids, _id))
