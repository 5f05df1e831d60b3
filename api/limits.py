"""Rate limits, counted in Redis when REDIS_URL is set (shared by every worker and instance), else in-process.

slowapi's decorators never see the GraphQL route: its default limits skip routes added with
`include_router` on current FastAPI (laurentS/slowapi#281), and Strawberry's GraphQLRouter is one.
So the limits here use slowapi's own engine, the `limits` package, directly (`limits.aio`).
"""

import hashlib
import math
import time
from collections.abc import Iterator

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis
from starlette.responses import Response
from strawberry.extensions import SchemaExtension

from api import metrics
from api.settings import Settings
from domains.common.exceptions import RateLimitedError

LOGIN_LIMITED = "Too many sign-in attempts for this e-mail address; try again later."


def create_limit_storage(settings: Settings, redis: Redis | None) -> Storage:
    """Return the counters' storage: the app's Redis when configured, else this process's memory."""
    if redis is None:
        return MemoryStorage()
    return RedisStorage(
        "async+redis://",
        implementation="redispy",
        key_prefix=f"{settings.redis_key_prefix}:limits",
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # passed through to redis.asyncio.Redis
    )


def _digest(value: str) -> str:
    # Keys hold no e-mail address in clear: Redis is not where personal data should pile up.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class RateLimits:
    """The process's rate limits, over one storage."""

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._login: RateLimitItem = parse(settings.login_rate_limit)

    async def hit_login(self, *, client_ip: str, email: str) -> None:
        """Count one sign-in attempt for this IP and e-mail address; raise RateLimitedError past the limit."""
        identifiers = ("token-create", client_ip, _digest(email.strip().lower()))
        if await self._limiter.hit(self._login, *identifiers):
            return
        metrics.RATE_LIMIT_REFUSALS.labels("token_create").inc()
        stats = await self._limiter.get_window_stats(self._login, *identifiers)
        raise RateLimitedError(LOGIN_LIMITED, retry_after=max(1, math.ceil(stats.reset_time - time.time())))

    async def close(self) -> None:
        """Stop the in-process store's expiry timer; Redis connections close with the app's client."""
        timer = getattr(self.storage, "timer", None)
        if timer is not None and not timer.done():
            timer.cancel()


class RateLimitedStatus(SchemaExtension):
    """Answer a refused operation with HTTP 429 and `Retry-After`, as SPEC §5 asks (the body stays GraphQL)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        response = getattr(self.execution_context.context, "response", None)
        if result is None or not result.errors or not isinstance(response, Response):
            return
        refusals = [e.original_error for e in result.errors if isinstance(e.original_error, RateLimitedError)]
        if refusals:
            response.status_code = 429
            response.headers["Retry-After"] = str(max(refusal.retry_after for refusal in refusals))
