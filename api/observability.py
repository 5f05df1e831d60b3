"""Logging set-up, and the middleware that gives every request an id, an access line and a safety net.

Middleware order, outermost first (api/app.py): request id → access log → security headers →
exception handling → Prometheus timing → CORS → TrustedHost → body limit → the app. The request
id is bound first so every later line carries it. The body limit answers its own 413 (an
HTTPException), so it never reaches the exception handling here as a 500.
"""

import logging
import re
import sys
import time
import uuid
from typing import Any

import orjson
import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.settings import Settings

REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def configure_logging(settings: Settings) -> None:
    """Route structlog and the standard library through one pipeline: JSON in production."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.is_production
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        # Filtered first: a line below LOG_LEVEL (the access line at WARNING) costs no rendering.
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if settings.is_production else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level.upper())
    # aiosqlite narrates every call from its worker thread at DEBUG: noise, and outside any request.
    logging.getLogger("aiosqlite").setLevel(max(root.level, logging.INFO))
    route_server_logs_to_root()


SERVER_LOGGERS = ("gunicorn.error", "uvicorn", "uvicorn.error")
# Their access lines would repeat ours (api.access), which also name the GraphQL operation.
SILENCED_ACCESS_LOGGERS = ("gunicorn.access", "uvicorn.access")


def route_server_logs_to_root() -> None:
    """Send gunicorn's and uvicorn's own loggers through the root handler, i.e. through structlog."""
    for name in SERVER_LOGGERS + SILENCED_ACCESS_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers = []
        server_logger.propagate = name in SERVER_LOGGERS


def _identity(_logger: object, _method: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    return event_dict


class RequestIdMiddleware:
    """Take a sane incoming X-Request-ID or make one; expose it to the app, the logs and the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = next(
            (value.decode("latin-1") for key, value in scope["headers"] if key == REQUEST_ID_HEADER.encode()),
            None,
        )
        request_id = incoming if incoming and _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


def _state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


class AccessLogMiddleware:
    """Write one structured line per HTTP request: method, path, status, duration and the GraphQL operation."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.logger = structlog.get_logger("api.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_capturing_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_capturing_status)
        finally:
            path: str = scope["path"]
            log = self.logger.debug if path.startswith(("/health", "/metrics")) else self.logger.info
            log(
                "http.request",
                method=scope["method"],
                path=path,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                **_state(scope).get("graphql", {}),
                cost=_state(scope).get("graphql_cost"),
            )


class ExceptionMiddleware:
    """Turn an exception no layer handled into a bare 500 that names only the request id; log it in full."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.logger = structlog.get_logger("schema.extensions.errors")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            self.logger.exception("http.unhandled_error", path=scope["path"])
            if started:
                raise
            body = orjson.dumps({"error": "Internal server error", "requestId": _state(scope).get("request_id")})
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})
