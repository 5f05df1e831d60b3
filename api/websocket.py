"""GraphQL over WebSocket (graphql-transport-ws) as its reference client expects it, and sockets that cost little.

- Messages go out as text frames, and `connection_init` may carry a null payload.
- Each operation on a socket runs with a context of its own: its own unit of work and loaders,
  opened for the operation and closed after it, so an idle socket holds no database connection and
  two subscriptions on one socket never share a session.
- The server pings every WS_KEEPALIVE_SECONDS (the client answers pong), so proxies keep the
  connection open and a dead peer is noticed; a process serves at most WS_MAX_CONNECTIONS sockets.
"""

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping
from contextvars import ContextVar
from typing import Any, TypeGuard

import orjson
import structlog
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import PingMessage

from api.context import RequestContext
from api.persisted import PersistedOperations, PersistedQueryError
from domains.common.background import running, stop
from domains.common.exceptions import ServiceUnavailableError
from schema import metrics

TRY_AGAIN_LATER = 1013
TOO_MANY_SOCKETS = "This server has as many WebSocket connections as it takes; try again shortly."

logger = structlog.get_logger("api.websocket")

# The context of the operation a task runs: set in the operation's own task, so it is seen by that
# operation only (and by the tasks it starts), never by another operation on the same socket.
_operation_context: ContextVar[RequestContext | None] = ContextVar("ws_operation_context", default=None)


def _is_init_with_null_payload(message: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(message, dict) and message.get("type") == "connection_init" and message.get("payload", 0) is None


class TextWebSocketAdapter(ASGIWebSocketAdapter):
    """The WebSocket side of the router: messages go out as text frames and `connection_init` may carry null.

    graphql-transport-ws messages are JSON text: clients (the reference `graphql-ws` among them)
    reject a binary frame, which Strawberry sends whenever the view's encoder returns bytes, as ours
    does for HTTP. The protocol allows `"payload": null` in `connection_init`; Strawberry closes
    such a socket with 4400, so a null payload is read as none.
    """

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        async for message in super().iter_json(ignore_parsing_errors=ignore_parsing_errors):
            if _is_init_with_null_payload(message):
                message = {key: value for key, value in message.items() if key != "payload"}
            yield message

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


_stopping: set["asyncio.Task[None]"] = set()  # operations being stopped after `complete`, kept until they end


class OperationScopedTransportWSHandler(BaseGraphQLTransportWSHandler[RequestContext, None]):
    """graphql-transport-ws with a unit of work per operation, keep-alive pings and a per-process socket limit."""

    open_sockets = 0  # in this process

    @property
    def context(self) -> RequestContext:
        """The running operation's context inside its task; the connection's everywhere else."""
        return _operation_context.get() or self._connection_context

    @context.setter
    def context(self, value: RequestContext) -> None:
        self._connection_context = value

    async def handle(self) -> None:
        settings = self._connection_context.app_settings
        if OperationScopedTransportWSHandler.open_sockets >= settings.ws_max_connections:
            await self.websocket.close(code=TRY_AGAIN_LATER, reason=TOO_MANY_SOCKETS)
            return
        OperationScopedTransportWSHandler.open_sockets += 1
        metrics.WEBSOCKETS_OPEN.inc()
        try:
            async with running("ws-keepalive", self._keep_alive(settings.ws_keepalive_seconds)):
                await super().handle()
        finally:
            OperationScopedTransportWSHandler.open_sockets -= 1
            metrics.WEBSOCKETS_OPEN.dec()
            await self._connection_context.db.close()

    async def shutdown(self) -> None:
        # Strawberry cancels each operation once and then awaits it: a cancellation lost on Python
        # 3.11 (see domains.common.background) would hold this socket's teardown, and its operation, forever.
        await asyncio.gather(*(stop(operation.task) for operation in self.operations.values() if operation.task))
        await super().shutdown()

    async def cleanup_operation(self, operation_id: str) -> None:
        # On `complete`, Strawberry cancels the operation once without waiting for it (not to hold
        # the socket's reader); a cancellation lost on Python 3.11 would leave it running, so it is
        # stopped in the background until it has ended.
        operation = self.operations.get(operation_id)
        await super().cleanup_operation(operation_id)
        if operation is not None and operation.task is not None and not operation.task.done():
            stopping = asyncio.create_task(stop(operation.task), name="ws-operation-stop")
            _stopping.add(stopping)
            stopping.add_done_callback(_stopping.discard)

    async def handle_subscribe(self, message: Any) -> None:
        """Fill in a persisted document (APQ hash, `documentId`); in trusted-documents mode, run the manifest's only."""
        payload = message.get("payload")
        if not isinstance(payload, dict) or not self.connection_acknowledged or message.get("id") in self.operations:
            await super().handle_subscribe(message)  # Strawberry's own refusals (4400, 4401, 4409)
            return
        request = self._connection_context.request
        assert request is not None  # noqa: S101 - the router sets it before any message
        persisted: PersistedOperations = request.app.state.persisted_operations
        try:
            query = await persisted.resolve(payload.get("query"), payload.get("extensions"), payload.get("documentId"))
        except PersistedQueryError as exc:
            extensions = {"code": exc.code, "requestId": self._connection_context.request_id}
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [{"message": exc.message, "extensions": extensions}]}
            )
            return
        if query is not None and query is not payload.get("query"):
            message = {**message, "payload": {**payload, "query": query}}
        await super().handle_subscribe(message)

    async def handle_connection_init(self, message: Any) -> None:
        try:
            await super().handle_connection_init(message)
        except ServiceUnavailableError as exc:
            # The payload's credential could not be checked (the database is away): not a rejection of
            # the credential (4403), but "try again later", which a client may retry with back-off.
            await self.websocket.close(code=TRY_AGAIN_LATER, reason=exc.message)
        finally:
            # Authentication read the database; an idle socket keeps no connection from the pool.
            await self._connection_context.db.release()

    async def run_operation(self, operation: Any) -> None:
        context = self._connection_context.for_operation()
        token = _operation_context.set(context)
        try:
            await super().run_operation(operation)
        finally:
            _operation_context.reset(token)
            await context.db.close()

    async def _keep_alive(self, interval: float) -> None:
        ping: PingMessage = {"type": "ping"}
        with contextlib.suppress(WebSocketDisconnected, RuntimeError):
            while True:
                await asyncio.sleep(interval)
                if self.connection_acknowledged:
                    await self.send_message(ping)
