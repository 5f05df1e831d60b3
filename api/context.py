"""The GraphQL context of one request or WebSocket connection, built by a FastAPI dependency."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext

from api.auth.principal import get_authentication
from api.dependencies import get_request_db
from api.settings import Settings
from domains.common.exceptions import ServiceUnavailableError
from domains.common.principal import ANONYMOUS
from schema.context import Authentication, Context
from schema.unit_of_work import RequestDb


class RequestContext(Context, BaseContext):
    """The GraphQL context as Strawberry's FastAPI router wants it: it sets `request` and `response` on it."""

    @property
    def app_settings(self) -> Settings:
        """The app's settings (the GraphQL layer sees only what `SchemaSettings` names)."""
        assert self.request is not None  # noqa: S101 - the router sets it before any use
        settings: Settings = self.request.app.state.settings
        return settings

    def for_operation(self) -> "RequestContext":
        """A context for one operation on a WebSocket: the same caller, a unit of work and loaders of its own."""
        assert self.request is not None  # noqa: S101 - the router sets it before any operation
        state = self.request.app.state
        context = RequestContext(
            db=RequestDb(state.sessionmaker(), on_commit=state.after_commit),
            authentication=Authentication(self.principal, self.refusal),
            settings=self.settings,
            request_id=self.request_id,
            client_ip=self.client_ip,
            token_issuer=self.token_issuer,
            rate_limits=self.rate_limits,
            events=self.events,
        )
        context.request = self.request
        context.connection_params = self.connection_params
        return context


_request_db = asynccontextmanager(get_request_db)


async def _authentication(connection: HTTPConnection, db: RequestDb) -> Authentication:
    try:
        return await get_authentication(connection, db)
    except ServiceUnavailableError as exc:
        if connection.scope["type"] != "websocket":
            raise  # GraphQLHTTPEndpoint answers 503 before the operation
        # The upgrade's credential could not be checked: kept as the refusal, which closes the socket
        # "try again later" at `connection_init` (raised here, the handshake would fail with a 500).
        return Authentication(ANONYMOUS, exc)


async def get_context(connection: HTTPConnection) -> AsyncIterator[RequestContext]:
    """Build the GraphQL context of one request or WebSocket connection; close its unit of work after it.

    One dependency doing what `get_request_db` and `get_authentication` do as dependencies of
    other routes: FastAPI's resolution of each sub-dependency cost more than the work it wrapped
    (about a tenth of a `{ __typename }` request, bench/fixed_cost.py).
    """
    state = connection.app.state
    async with _request_db(connection) as db:
        yield RequestContext(
            db=db,
            authentication=await _authentication(connection, db),
            settings=state.settings,
            request_id=connection.state.request_id,
            client_ip=connection.client.host if connection.client else "unknown",
            token_issuer=state.token_issuer,
            rate_limits=state.rate_limits,
            events=state.events,
        )
