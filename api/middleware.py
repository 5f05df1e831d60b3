"""ASGI middleware of the HTTP edge: the request body limit; the security headers every answer carries."""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http import HTTPRefusal, refusal_response

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
# For everything but the GraphiQL page, which sets its own policy: JSON and text load nothing.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
WS_MESSAGE_TOO_BIG = 1009


def body_too_large_message(limit: int) -> str:
    """Say what the limit is, so a client can split its request."""
    return f"The request body is larger than the limit of {limit} bytes."


class RequestBodyTooLarge(HTTPException):
    """Raised from `receive` the moment a streamed body passes the limit; the app answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, body_too_large_message(limit))


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed Content-Length itself
    return None


class BodyLimitMiddleware:
    """Cap request bodies (declared or streamed) and WebSocket messages at `max_bytes`.

    A Content-Length over the limit is refused before the app runs; one within it is all the server
    delivers. A body without one (chunked) is counted chunk by chunk as the app reads it, and refused
    as soon as it passes the limit: the app never holds more than the limit plus one chunk. The
    exception is an HTTPException(413), so the app's own handler answers it; if something outside a
    route read the body, it is answered here.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(scope, receive, send)
            else:
                # The server frames the body by its Content-Length (uvicorn refuses one sent with
                # Transfer-Encoding too): the app can read no more than declared, nothing to count.
                await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestBodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except RequestBodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = HTTPRefusal(413, body_too_large_message(self.max_bytes))
        await refusal_response(scope, refusal)(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        # uvicorn's --ws-max-size stops a big frame before it is buffered; this also holds under
        # any other server: the connection is closed with 1009 and the app sees a disconnect.
        closed = False

        async def limited_receive() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.receive" and not closed:
                data = message.get("bytes") or (message.get("text") or "").encode()
                if len(data) > self.max_bytes:
                    closed = True
                    await send({"type": "websocket.close", "code": WS_MESSAGE_TOO_BIG, "reason": "Message too big"})
                    return {"type": "websocket.disconnect", "code": WS_MESSAGE_TOO_BIG}
            return message

        async def guarded_send(message: Message) -> None:
            if not closed:  # the connection is gone: what the app still says goes nowhere
                await send(message)

        await self.app(scope, limited_receive, guarded_send)
