"""The typed per-request GraphQL context, built by a FastAPI dependency."""

from dataclasses import dataclass
from typing import Annotated, Self

import strawberry
from fastapi import Depends
from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext

from api.auth.principal import Authentication, get_authentication
from api.db import RequestDb, get_request_db
from api.limits import RateLimits
from api.settings import Settings
from domains.common.exceptions import UnauthenticatedError
from domains.common.principal import Principal
from domains.orders.loaders import OrdersLoaders
from domains.products.loaders import ProductsLoaders
from domains.users.loaders import UsersLoaders
from domains.users.tokens import TokenIssuer


@dataclass(frozen=True, slots=True)
class Loaders:
    orders: OrdersLoaders
    products: ProductsLoaders
    users: UsersLoaders

    @classmethod
    def create(cls, db: RequestDb, principal: Principal) -> Self:
        """Build the request's loaders; never share them between requests."""
        users = UsersLoaders.create(db, principal)
        return cls(
            orders=OrdersLoaders.create(db, principal),
            products=ProductsLoaders.create(db, principal, users.user_by_id),
            users=users,
        )


class Context(BaseContext):
    def __init__(
        self,
        *,
        db: RequestDb,
        authentication: Authentication,
        settings: Settings,
        request_id: str,
        client_ip: str,
        token_issuer: TokenIssuer,
        rate_limits: RateLimits,
    ) -> None:
        super().__init__()
        self.db = db
        self.settings = settings
        self.request_id = request_id
        self.client_ip = client_ip
        self.token_issuer = token_issuer
        self.rate_limits = rate_limits
        # Set by api.http.MarkExecutionStarted; until then an HTTP answer carries no `data` (GraphQL over HTTP).
        self.execution_started = False
        self.authenticate_as(authentication)

    def authenticate_as(self, authentication: Authentication) -> None:
        """Set who is asking (a WebSocket learns it from `connection_init`); loaders are rebuilt for them."""
        self.principal: Principal = authentication.principal
        # A refused credential stops every operation of this request with UNAUTHENTICATED.
        self.refusal: UnauthenticatedError | None = authentication.refusal
        self.loaders = Loaders.create(self.db, self.principal)


async def get_context(
    connection: HTTPConnection,
    db: Annotated[RequestDb, Depends(get_request_db)],
    authentication: Annotated[Authentication, Depends(get_authentication)],
) -> Context:
    """Build the GraphQL context of one request or WebSocket connection."""
    state = connection.app.state
    return Context(
        db=db,
        authentication=authentication,
        settings=state.settings,
        request_id=connection.state.request_id,
        client_ip=connection.client.host if connection.client else "unknown",
        token_issuer=state.token_issuer,
        rate_limits=state.rate_limits,
    )


Info = strawberry.Info[Context, None]
