"""The application factory: the composition root of the service."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from redis.asyncio import BlockingConnectionPool, Redis
from starlette.middleware.trustedhost import TrustedHostMiddleware

from api import graphiql, health, metrics
from api.auth.principal import build_token_issuer
from api.db import create_engine, create_sessionmaker
from api.events import EventBus, running_relay
from api.graphql import create_graphql_router
from api.limits import RateLimits, create_limit_storage
from api.observability import AccessLogMiddleware, ExceptionMiddleware, RequestIdMiddleware, configure_logging
from api.settings import Settings, get_settings

logger = structlog.get_logger("api.app")

REDIS_MAX_CONNECTIONS = 100
REDIS_POOL_TIMEOUT_SECONDS = 5.0


def _create_redis(settings: Settings) -> Redis | None:
    # redis-py's default pool refuses the 101st concurrent command (MaxConnectionsError): a burst of
    # 200 sign-ins, each counting its attempt, would fail half of them. This pool makes them wait.
    if not settings.redis_url:
        return None
    pool = BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=REDIS_MAX_CONNECTIONS, timeout=REDIS_POOL_TIMEOUT_SECONDS
    )
    return Redis.from_pool(pool)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app; the engine lives in the lifespan, created and disposed with it."""
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        redis = _create_redis(settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.redis = redis
        app.state.rate_limits = RateLimits(create_limit_storage(settings, redis), settings)
        app.state.events = EventBus()
        app.state.shutting_down = False
        try:
            interval = settings.outbox_relay_interval_seconds
            async with (
                running_relay(app.state.events, app.state.sessionmaker, interval=interval),
                metrics.sampling(engine),
            ):
                yield
        finally:
            app.state.shutting_down = True
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
    app.include_router(health.router)
    if settings.graphiql_enabled:
        if not graphiql.assets_present():
            logger.warning("graphiql.assets_missing", fix="run `make install` (python -m api.graphiql)")
        app.mount(graphiql.MOUNT_PATH, StaticFiles(directory=graphiql.ASSETS_DIR, check_dir=False), name="ide")
    app.include_router(create_graphql_router(settings), prefix="/graphql")
    # Added last = outermost. In order of arrival: request id (so every later line has it), access
    # log, exception handling, Prometheus timing, CORS, TrustedHost, then the routes.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    metrics.instrument(app)
    app.add_middleware(ExceptionMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app
