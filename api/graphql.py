"""The /graphql endpoint: Strawberry's FastAPI router, speaking GraphQL over HTTP (api/http.py) at the edge.

Strawberry answers its own refusals in plain text and reports request errors with `"data": null`
and status 200 whatever the client accepts. This router answers every refusal as a GraphQL error
(api/http.py), refuses CSRF-able requests, negotiates `application/graphql-response+json`, and
leaves `data` out when execution never began (the `execution_started` flag of the context). An answer
gets its Cache-Control, Vary and ETag here, or a 304 (api/http_cache.py).
"""

from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, cast, overload

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from fastapi import Request, Response, WebSocket
from fastapi.responses import HTMLResponse
from starlette.types import Receive, Scope, Send
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from api.auth.credentials import Credentials, read_connection_params
from api.auth.principal import authenticate
from api.context import RequestContext, get_context
from api.graphiql import content_security_policy, ide_html
from api.http import (
    GRAPHQL_RESPONSE_JSON,
    UNAUTHENTICATED,
    HTTPRefusal,
    negotiate_media_type,
    refusal_response,
    refuse_cross_site_request,
    request_data_from,
    require_json_content_type,
)
from api.http_cache import add_vary, settle
from api.persisted import PersistedOperations
from api.settings import Settings
from api.websocket import OperationScopedTransportWSHandler, TextWebSocketAdapter
from domains.common.exceptions import ServiceUnavailableError, UnauthenticatedError
from schema import build_schema
from schema.context import Authentication

ONLY_QUERIES_OVER_GET = "Only queries are accepted over GET; send mutations with POST."
QUERY_ONLY = frozenset({OperationType.QUERY})
ANY_OPERATION = frozenset(OperationType)
UNPARSABLE_JSON = "The request body is not valid JSON."
MISSING_QUERY = "The request has no GraphQL `query`."
OTHER_METHOD = "GraphQL is served over GET (queries) and POST."
ALLOW_GET_AND_POST = {"allow": "GET, POST"}
PERSISTED_PARAMS = ("extensions", "documentId")


class MethodNotAllowed:
    """ASGI app answering any other method on /graphql; Starlette's own 405 names only the first route's."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = HTTPRefusal(405, OTHER_METHOD, headers=ALLOW_GET_AND_POST)
        await refusal_response(scope, refusal)(scope, receive, send)


def _rejection(refusal: UnauthenticatedError) -> ConnectionRejectionError:
    return ConnectionRejectionError({"code": refusal.code, "message": refusal.message})


class GraphQLResponse(Response):
    """The JSON answer to an operation, remembering what the media type negotiation needs to know."""

    def __init__(self, body: bytes, *, status_code: int | None, data: GraphQLHTTPResponse) -> None:
        super().__init__(body, status_code=status_code or 200, media_type="application/json")
        # A status set by an extension (429 from a rate limit, 503) is never replaced.
        self.status_chosen = status_code is not None
        self.request_error = "data" not in data
        errors: list[Any] = data.get("errors") or []
        self.has_errors = bool(errors)
        self.codes = {(error.get("extensions") or {}).get("code") for error in errors}

    def negotiate(self, accept: str | None) -> None:
        """Use the media type the client prefers; with graphql-response+json, a request error is a 4xx."""
        media_type = negotiate_media_type(accept)
        self.headers["content-type"] = media_type
        if media_type == GRAPHQL_RESPONSE_JSON and self.request_error and not self.status_chosen:
            unauthenticated = UNAUTHENTICATED in self.codes
            self.status_code = 401 if unauthenticated else 400
            if unauthenticated:
                self.headers["www-authenticate"] = "Bearer"

    def cached_for(self, request: Request) -> Response:
        """Settle Cache-Control, Vary and ETag (api/http_cache.py); a 304 when the client's copy is current."""
        return settle(request.headers, self, errors=self.has_errors)


class StarletteRequest(StarletteRequestAdapter):
    """Strawberry's request adapter, keeping the Starlette request (and so the app's state) within reach."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.request = request


class StorefrontGraphQLRouter(GraphQLRouter[RequestContext, None]):
    request_adapter_class = StarletteRequest
    websocket_adapter_class = TextWebSocketAdapter
    graphql_transport_ws_handler_class = OperationScopedTransportWSHandler

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return self.decode_json(data)
        except orjson.JSONDecodeError as exc:  # also invalid UTF-8 and nesting deeper than 1024
            raise HTTPRefusal(400, UNPARSABLE_JSON) from exc

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        settings: Settings = request.app.state.settings
        page = ide_html(demo=not settings.is_production)  # the demo accounts exist in development only
        return HTMLResponse(page, headers={"content-security-policy": content_security_policy()})

    @overload
    async def run(self, request: Request, context: RequestContext = ..., root_value: None = ...) -> Response: ...

    @overload
    async def run(self, request: WebSocket, context: RequestContext = ..., root_value: None = ...) -> WebSocket: ...

    async def run(
        self, request: Request | WebSocket, context: RequestContext = UNSET, root_value: None = UNSET
    ) -> Response | WebSocket:
        """Serve one request; every refusal on the way becomes a GraphQL-shaped error."""
        if isinstance(request, WebSocket):
            return await super().run(request, context, root_value)
        try:
            response = await super().run(request, context, root_value)
        except HTTPException as exc:  # Strawberry's own refusals (405 for other methods, 404 without GraphiQL)
            allow = ALLOW_GET_AND_POST if exc.status_code == 405 else None
            refused = refusal_response(request.scope, HTTPRefusal(exc.status_code, exc.reason, headers=allow))
            return settle(request.headers, refused, errors=True)
        except HTTPRefusal as refusal:
            return settle(request.headers, refusal_response(request.scope, refusal), errors=True)
        if isinstance(response, GraphQLResponse):
            response.negotiate(request.headers.get("accept"))
            return response.cached_for(request)
        add_vary(response.headers, "Accept")  # the GraphiQL page: chosen by Accept too
        return response

    async def get_sub_response(self, request: Request) -> Response:
        # Strawberry's reads the router's `temporal_response`, one attribute shared by concurrent requests.
        sub_response: Response = request.state.sub_response
        return sub_response

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A GET naming its document by hash or id has no `query`, and a client's `Accept: */*` would
        # otherwise get the GraphiQL page (or its 404 when off) instead of the operation's answer.
        # Strawberry's own test first: a POST (every operation but a GET's) parses no query string.
        if not super().should_render_graphql_ide(request):
            return False
        return not any(request.query_params.get(name) for name in PERSISTED_PARAMS)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        refuse_cross_site_request(request.headers)
        if request.method == "GET":
            # An empty parameter (`variables=`) is as good as none.
            params = {key: value for key, value in request.query_params.items() if value != ""}
            data = self.parse_query_params(params)
        else:
            require_json_content_type(request.content_type)
            data = self.parse_json(await request.get_body())
        request_data = request_data_from(data)
        # A document named by its hash or `documentId` is filled in here (api/persisted.py), so a
        # persisted GET goes through the same checks, and a mutation by hash over GET is still a 405.
        assert isinstance(request, StarletteRequest)  # noqa: S101 - the router's request_adapter_class
        persisted: PersistedOperations = request.request.app.state.persisted_operations
        return await persisted.resolve_request(request_data, data, request.headers.get("accept"))

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: RequestContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            result = await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                # Over GET only queries: they change nothing, so a link or a cache may repeat them.
                allowed_operation_types=QUERY_ONLY if request_adapter.method == "GET" else ANY_OPERATION,
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as exc:
            raise HTTPRefusal(405, ONLY_QUERIES_OVER_GET, headers={"allow": "POST"}) from exc
        except CannotGetOperationTypeError as exc:
            raise HTTPRefusal(400, exc.as_http_error_reason()) from exc
        except MissingQueryError as exc:
            raise HTTPRefusal(400, MISSING_QUERY) from exc
        if context.execution_started:
            return result
        return PreExecutionError(data=None, errors=result.errors, extensions=result.extensions)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if isinstance(result, PreExecutionError):
            # The GraphQL-over-HTTP spec: a request error (nothing was executed) has no `data` entry.
            response.pop("data", None)
        return response

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        # Batching is off (parse_http_body refuses a list), so there is one result to describe.
        single: GraphQLHTTPResponse = {} if isinstance(response_data, list) else response_data
        response = GraphQLResponse(self.encode_json(response_data), status_code=sub_response.status_code, data=single)
        response.headers.raw.extend(sub_response.headers.raw)
        return response

    async def on_ws_connect(self, context: RequestContext) -> UnsetType | dict[str, object] | None:
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
        if isinstance(context.refusal, ServiceUnavailableError):
            raise context.refusal  # the upgrade's credential could not be checked: closed "try again later"
        if context.refusal is not None:
            raise _rejection(context.refusal)
        return await super().on_ws_connect(context)


_open_context = asynccontextmanager(get_context)


class GraphQLHTTPEndpoint:
    """GET and POST /graphql: the router's own handling, without FastAPI's routing and dependency injection.

    The router's HTTP routes resolve the context as a FastAPI dependency (with a `yield`) wrapped in
    Strawberry's, and a sub-response as another: about a twentieth of a small query's CPU, spent
    on the injection rather than the work. This endpoint opens the same context, sets what
    Strawberry's wrapper sets on it, runs the router, and closes the context (the request's unit
    of work) before the answer is sent. Any other method is MethodNotAllowed's.
    """

    def __init__(self, router: StorefrontGraphQLRouter) -> None:
        self.router = router
        self.other_methods = MethodNotAllowed()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "POST"):
            await self.other_methods(scope, receive, send)
            return
        request = Request(scope, receive)
        # As FastAPI's `Response` dependency: no status and no length of its own, only headers to pass on.
        sub_response = Response()
        del sub_response.headers["content-length"]
        sub_response.status_code = None  # type: ignore[assignment]
        try:
            async with _open_context(request) as context:
                context.request, context.response = request, sub_response
                request.state.sub_response = sub_response  # get_sub_response's, per request
                response = await self.router.run(request, context, None)
        except ServiceUnavailableError as exc:
            # Before any operation ran: reading the credential's account found the database away.
            retry = {"retry-after": str(exc.retry_after)}
            response = refusal_response(scope, HTTPRefusal(503, exc.message, headers=retry, code=exc.code))
        await response(scope, receive, send)


def create_graphql_router(settings: Settings) -> StorefrontGraphQLRouter:
    """Build the GraphQL router for these settings (GraphiQL and introspection per mode)."""
    return StorefrontGraphQLRouter(
        build_schema(introspection=settings.introspection_enabled),
        # A dependency with `yield` (it closes the unit of work), which FastAPI resolves to what it
        # yields; Strawberry's annotation names plain and async functions only.
        context_getter=cast("Callable[..., Awaitable[RequestContext]]", get_context),
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        allow_queries_via_get=True,
        subscription_protocols=(
            (GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL)
            if settings.ws_legacy_protocol
            else (GRAPHQL_TRANSPORT_WS_PROTOCOL,)
        ),
        connection_init_wait_timeout=timedelta(seconds=settings.ws_connection_init_timeout_seconds),
        max_subscriptions_per_connection=settings.ws_max_subscriptions,
    )
