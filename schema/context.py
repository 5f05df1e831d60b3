"""The typed per-request GraphQL context: who asks, their unit of work and loaders, the limits they spend."""

from dataclasses import dataclass
from functools import cached_property
from typing import Self

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from domains.common.exceptions import ServiceUnavailableError, UnauthenticatedError
from domains.common.principal import Principal
from domains.users.tokens import TokenIssuer
from schema.events import EventBus
from schema.orders.loaders import OrdersLoaders
from schema.products.loaders import ProductsLoaders
from schema.rate_limits import RateLimits
from schema.settings import SchemaSettings
from schema.unit_of_work import RequestDb
from schema.users.loaders import UsersLoaders
from schema.webhooks.loaders import WebhooksLoaders


@dataclass(frozen=True, slots=True)
class Authentication:
    """The outcome of authenticating a request: a principal, or the reason its credential was refused."""

    principal: Principal
    # A credential that cannot be trusted; or, on a WebSocket, one that could not be checked (the
    # database away), which closes the socket "try again later" at `connection_init`.
    refusal: UnauthenticatedError | ServiceUnavailableError | None = None


class Loaders:
    """The request's loaders, one set per domain; never share them between requests.

    Each domain's set is built on first use: most operations touch one or two domains, and
    building all four for every request (a `{ __typename }` included) was a measurable share of
    a request's fixed cost. A set, once built, is the request's for good.
    """

    def __init__(self, db: RequestDb, principal: Principal) -> None:
        self._db = db
        self._principal = principal

    @classmethod
    def create(cls, db: RequestDb, principal: Principal) -> Self:
        """The loaders of one request (or one WebSocket operation), for this principal."""
        return cls(db, principal)

    @cached_property
    def orders(self) -> OrdersLoaders:
        return OrdersLoaders.create(self._db, self._principal)

    @cached_property
    def products(self) -> ProductsLoaders:
        # A review's author is handed on to the users' loader: the same one `users` returns.
        return ProductsLoaders.create(self._db, self._principal, self.users.user_by_id)

    @cached_property
    def users(self) -> UsersLoaders:
        return UsersLoaders.create(self._db, self._principal)

    @cached_property
    def webhooks(self) -> WebhooksLoaders:
        return WebhooksLoaders.create(self._db, self._principal)


class Context:
    """What every resolver and extension is handed; the edge fills in `request` and `response`.

    Plain on purpose: the edge subclasses it with Strawberry's FastAPI `BaseContext`, so this layer
    imports nothing of FastAPI.
    """

    def __init__(
        self,
        *,
        db: RequestDb,
        authentication: Authentication,
        settings: SchemaSettings,
        request_id: str,
        client_ip: str,
        token_issuer: TokenIssuer,
        rate_limits: RateLimits,
        events: EventBus,
    ) -> None:
        super().__init__()
        self.request: Request | WebSocket | None = None
        self.response: Response | None = None
        self.db = db
        self.settings = settings
        self.request_id = request_id
        self.client_ip = client_ip
        self.token_issuer = token_issuer
        self.rate_limits = rate_limits
        self.events = events
        # Set by schema.extensions.observability.MarkExecutionStarted; until then an HTTP answer
        # carries no `data` (GraphQL over HTTP).
        self.execution_started = False
        self.authenticate_as(authentication)

    def authenticate_as(self, authentication: Authentication) -> None:
        """Set who is asking (a WebSocket learns it from `connection_init`); loaders are rebuilt for them."""
        self.principal: Principal = authentication.principal
        # A refused credential stops every operation of this request with UNAUTHENTICATED.
        self.refusal: UnauthenticatedError | ServiceUnavailableError | None = authentication.refusal
        self.loaders = Loaders.create(self.db, self.principal)

    def renew_loaders(self) -> None:
        """Drop every value the loaders hold: the operation runs again from nothing loaded."""
        self.loaders = Loaders.create(self.db, self.principal)


Info = strawberry.Info[Context, None]
