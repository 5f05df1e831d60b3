"""The GraphQL context of one request or WebSocket connection, built by a FastAPI dependency."""

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext

from api.auth.principal import get_authentication
from api.dependencies import get_request_db
from schema.context import Authentication, Context
from schema.unit_of_work import RequestDb


class RequestContext(Context, BaseContext):
    """The GraphQL context as Strawberry's FastAPI router wants it: it sets `request` and `response` on it."""


async def get_context(
    connection: HTTPConnection,
    db: Annotated[RequestDb, Depends(get_request_db)],
    authentication: Annotated[Authentication, Depends(get_authentication)],
) -> RequestContext:
    """Build the GraphQL context of one request or WebSocket connection."""
    state = connection.app.state
    return RequestContext(
        db=db,
        authentication=authentication,
        settings=state.settings,
        request_id=connection.state.request_id,
        client_ip=connection.client.host if connection.client else "unknown",
        token_issuer=state.token_issuer,
        rate_limits=state.rate_limits,
    )
