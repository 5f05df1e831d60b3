"""The application factory: the composition root of the service."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import cast

import strawberry
import structlog
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import Response
from taskiq import AsyncBroker
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import graphiql, health, metrics
from api.auth.principal import build_token_issuer
from api.db import create_engine, create_sessionmaker
from api.events import after_commit, create_event_bus, running_bus, running_relay
from api.graphql import GraphQLHTTPEndpoint, create_graphql_router
from api.http import PREFLIGHT_HEADERS, HTTPRefusal, refusal_response
from api.limits import RequestRateLimitMiddleware, create_limit_storage
from api.middleware import BodyLimitMiddleware
from api.observability import EdgeMiddleware, configure_logging
from api.persisted import PersistedOperations, create_document_store, trusted_documents
from api.settings import Settings, get_settings
from api.tasks import running_in_process, task_broker, task_config
from schema.extensions.complexity import configure_validation_work
from schema.rate_limits import RateLimits
from tasks import sender
from tasks.jobs import Runtime

logger = structlog.get_logger("api.app")
RequestHandler = Callable[[Request], Awaitable[Response]]
# What a browser app may send (credentials, JSON, the CSRF-prevention headers of api/http.py) and read.
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "X-API-Key", "X-Request-ID", *PREFLIGHT_HEADERS]
CORS_EXPOSED_HEADERS = [
    "X-Request-ID",
    "RateLimit-Limit",
    "RateLimit-Policy",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Retry-After",
    "ETag",
]
CORS_MAX_AGE_SECONDS = 600
REDIS_MAX_CONNECTIONS = 100
REDIS_POOL_TIMEOUT_SECONDS = 5.0


async def _refuse(request: Request, exc: Exception) -> Response:
    # Every HTTPException (routing's 404 and 405, a dependency's refusal) gets the GraphQL error shape.
    if not isinstance(exc, HTTPException):
        raise exc
    refusal = HTTPRefusal(exc.status_code, exc.detail, headers=exc.headers)
    return refusal_response(request.scope, refusal)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app; the engine lives in the lifespan, created and disposed with it."""
    settings = settings or get_settings()
    configure_logging(settings)
    configure_validation_work(settings.query_max_validation_work)
    # Read once, before serving: with TRUSTED_DOCUMENTS_ONLY a missing or broken manifest stops start-up here.
    manifest = trusted_documents(settings)
    router = create_graphql_router(settings)
    schema = cast("strawberry.Schema", router.schema)._schema

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        redis = _redis_client(settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.redis = redis
        app.state.rate_limits = RateLimits(create_limit_storage(settings, redis), settings)
        store = create_document_store(settings, redis)
        app.state.persisted_operations = PersistedOperations(store, manifest, settings, schema)
        app.state.events = create_event_bus(settings, redis)
        app.state.tasks = task_broker(settings)
        app.state.after_commit = after_commit(app.state.events, app.state.tasks)
        app.state.shutting_down = False
        http = sender.create_client(timeout=settings.webhook_timeout_seconds)
        try:
            interval = settings.outbox_relay_interval_seconds
            async with (
                running_bus(app.state.events),
                running_relay(app.state.events, app.state.sessionmaker, interval=interval),
                _task_queue(app.state.tasks, settings, Runtime(app.state.sessionmaker, http, task_config(settings))),
                metrics.sampling(engine),
            ):
                yield
        finally:
            app.state.shutting_down = True
            await http.aclose()
            await app.state.rate_limits.close()
            if redis is not None:
                await redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="storefront-graphql",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.token_issuer = build_token_issuer(settings)
    # Every HTTP method goes to GraphQLHTTPEndpoint (an ASGI app as endpoint takes them all, though
    # add_route's type names request handlers only): GET and POST to the router, the rest to a 405.
    # First of the routes: Starlette's router and the metrics middleware's route lookup try them in
    # order, and nearly every request is for /graphql.
    app.add_route("/graphql", cast("RequestHandler", GraphQLHTTPEndpoint(router)), include_in_schema=False)
    app.include_router(health.router)
    if settings.graphiql_enabled:
        if not graphiql.assets_present():
            logger.warning(
                "graphiql.assets_missing",
                fix="run `make install` (python -m api.graphiql downloads them from the npm registry)",
            )
        graphiql.mount(app)
    # The router keeps its WebSocket route only.
    router.routes[:] = [route for route in router.routes if not isinstance(route, APIRoute)]
    app.include_router(router, prefix="/graphql")
    app.add_exception_handler(HTTPException, _refuse)
    _add_middleware(app, settings)
    return app


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # Added last = outermost. In order of arrival: the client address from trusted proxies, the edge
    # (request id, so every later line has it; access log; security headers on every answer, the 500
    # too; exception handling), Prometheus timing, CORS (so a 429 or 413 carries its headers), the
    # /graphql request rate (before the body is read), TrustedHost, the body limit, then the routes.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if "*" not in settings.trusted_hosts:  # with "*" it lets everything through: no layer at all
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts)
    app.add_middleware(RequestRateLimitMiddleware)
    if settings.allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=CORS_MAX_AGE_SECONDS,
        )
    metrics.instrument(app, settings.metrics_networks)
    app.add_middleware(EdgeMiddleware)
    # X-Forwarded-For is believed only from TRUSTED_PROXIES (addresses or networks); empty: from no one,
    # and no layer that would look up each peer among none.
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)


@asynccontextmanager
async def _task_queue(broker: AsyncBroker, settings: Settings, runtime: Runtime) -> AsyncIterator[None]:
    # With Redis the API only sends tasks (the worker runs them: `make worker`); without, it runs them too.
    if settings.redis_url is None:
        async with running_in_process(broker, settings, runtime):
            yield
        return
    try:
        await broker.startup()  # declares the workers' consumer group on the stream
    except (RedisError, OSError) as exc:
        # The API serves without Redis: writes log the failed hand-off, and the re-drive sends later.
        logger.warning("tasks.queue_unreachable", error=type(exc).__name__)
    try:
        yield
    finally:
        await broker.shutdown()


def _redis_client(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    # A blocking pool: redis-py's default one refuses the 101st concurrent command
    # (MaxConnectionsError), so a burst of 200 sign-ins, each counting its attempt, would fail half
    # of them. Short timeouts and one immediate retry (a connection gone stale across a Redis
    # restart): a Redis that is down must cost a request milliseconds, not redis-py's backoff.
    # Maintenance notifications are a Redis Enterprise/Cloud handshake; off, so a plain Redis
    # costs no refused CLIENT MAINT_NOTIFICATIONS round trip (and debug line) per connection.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=REDIS_POOL_TIMEOUT_SECONDS,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        retry=Retry(NoBackoff(), 1),
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )
    return Redis.from_pool(pool)
