"""The /graphql endpoint: Strawberry's FastAPI router with our context and JSON encoder."""

import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse
from strawberry.fastapi import GraphQLRouter

from api.context import Context, get_context
from api.graphiql import local_ide_html
from api.settings import Settings
from schema import build_schema


class StorefrontGraphQLRouter(GraphQLRouter[Context, None]):
    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(local_ide_html())


def create_graphql_router(settings: Settings) -> StorefrontGraphQLRouter:
    """Build the GraphQL router for these settings (GraphiQL and introspection per mode)."""
    return StorefrontGraphQLRouter(
        build_schema(introspection=settings.introspection_enabled),
        context_getter=get_context,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        allow_queries_via_get=True,
    )
