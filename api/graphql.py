"""The /graphql endpoint: Strawberry's FastAPI router with our context and JSON encoder."""

import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.types.unset import UnsetType

from api.auth.credentials import Credentials, read_connection_params
from api.auth.principal import Authentication, authenticate
from api.context import Context, get_context
from api.graphiql import local_ide_html
from api.settings import Settings
from domains.common.exceptions import UnauthenticatedError
from schema import build_schema


def _rejection(refusal: UnauthenticatedError) -> ConnectionRejectionError:
    return ConnectionRejectionError({"code": refusal.code, "message": refusal.message})


class StorefrontGraphQLRouter(GraphQLRouter[Context, None]):
    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(local_ide_html())

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate a WebSocket by its `connection_init` payload; reject a credential that cannot be trusted.

        A payload credential replaces what the upgrade request's headers gave. Without one, the headers'
        principal stays (anonymous by default), unless the headers carried a refused credential.
        """
        try:
            credentials = read_connection_params(context.connection_params)
            if credentials != Credentials() and context.request is not None:
                principal = await authenticate(context.request, context.db, credentials)
                context.authenticate_as(Authentication(principal))
        except UnauthenticatedError as exc:
            raise _rejection(exc) from exc
        if context.refusal is not None:
            raise _rejection(context.refusal)
        return await super().on_ws_connect(context)


def create_graphql_router(settings: Settings) -> StorefrontGraphQLRouter:
    """Build the GraphQL router for these settings (GraphiQL and introspection per mode)."""
    return StorefrontGraphQLRouter(
        build_schema(introspection=settings.introspection_enabled),
        context_getter=get_context,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        allow_queries_via_get=True,
    )
