"""The typed per-request GraphQL context, built by a FastAPI dependency."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Self

import strawberry
from fastapi import Depends, Request
from strawberry.fastapi import BaseContext

from api.auth.principal import get_principal
from api.db import RequestDb
from api.settings import Settings
from domains.common.principal import Principal
from domains.products.loaders import ProductsLoaders
from domains.users.loaders import UsersLoaders


@dataclass(frozen=True, slots=True)
class Loaders:
    products: ProductsLoaders
    users: UsersLoaders

    @classmethod
    def create(cls, db: RequestDb, principal: Principal) -> Self:
        """Build the request's loaders; never share them between requests."""
        users = UsersLoaders.create(db)
        return cls(products=ProductsLoaders.create(db, principal, users.user_by_id), users=users)


class Context(BaseContext):
    def __init__(self, *, db: RequestDb, principal: Principal, settings: Settings, request_id: str) -> None:
        super().__init__()
        self.db = db
        self.principal = principal
        self.settings = settings
        self.request_id = request_id
        self.loaders = Loaders.create(db, principal)


async def get_request_db(request: Request) -> AsyncIterator[RequestDb]:
    """Open the request's session and always close it, also when a resolver raised."""
    db = RequestDb(request.app.state.sessionmaker())
    try:
        yield db
    finally:
        await db.close()


async def get_context(
    request: Request,
    db: Annotated[RequestDb, Depends(get_request_db)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> Context:
    """Build the GraphQL context of one request."""
    return Context(
        db=db,
        principal=principal,
        settings=request.app.state.settings,
        request_id=request.state.request_id,
    )


Info = strawberry.Info[Context, None]
