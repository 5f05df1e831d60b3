"""The limits at the edge: their storage (Redis or memory) and the `/graphql` request rate, before the body is read.

slowapi is not used: its limiter calls the synchronous `limits` API (blocking Redis I/O on the
event loop), and its default limits skip routes added with `include_router`, as Strawberry's
GraphQLRouter is (laurentS/slowapi#281). The README says more.
"""

import time

from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from redis.asyncio import Redis
from starlette.types import ASGIApp, Receive, Scope, Send

from api.http import negotiate_media_type, refusal_body
from api.settings import Settings
from domains.common.exceptions import RateLimitedError
from schema.rate_limits import LimitStoreUnavailableError, RateLimits, rate_limit_headers


class ProcessStorage(MemoryStorage):
    """limits' in-process storage, whose fixed-window counters cost no task per increment.

    `MemoryStorage.incr` starts a task to expire old keys whenever the last one has finished (nearly
    always) and that task walks every key it holds: two tasks per `/graphql` request (its rate and
    its cost budget), each walking every client's counters. Here an increment is a dict update, and
    counters past their expiry are dropped at most once per SWEEP_SECONDS, by the increment that
    finds the sweep due. The sign-in limit's moving windows keep MemoryStorage's own expiry.
    """

    SWEEP_SECONDS = 1.0

    def __init__(self) -> None:
        super().__init__()
        self._next_sweep = 0.0

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        if self.expirations.get(key, 0.0) <= now:  # a new window, or one past its expiry
            self.storage.pop(key, None)
            self.expirations[key] = now + expiry
        count = self.storage[key] = self.storage[key] + amount
        if now >= self._next_sweep:
            self._sweep(now)
        return count

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self.SWEEP_SECONDS
        for key in [key for key, at in self.expirations.items() if at <= now]:
            self.storage.pop(key, None)
            self.expirations.pop(key, None)
            self.locks.pop(key, None)


def create_limit_storage(settings: Settings, redis: Redis | None) -> Storage:
    """Return the counters' storage: the app's Redis when configured, else this process's memory."""
    if redis is None:
        return ProcessStorage()
    return RedisStorage(
        "async+redis://",
        implementation="redispy",
        key_prefix=f"{settings.redis_key_prefix}:limits",
        wrap_exceptions=True,
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # passed through to redis.asyncio.Redis
    )


class RequestRateLimitMiddleware:
    """Count every `/graphql` request per client IP before its body is read; 429 past GRAPHQL_RATE_LIMIT.

    It runs before parsing and validation, so a flood of documents (valid or not) is stopped at the
    cost of one counter increment each. The client IP is `scope["client"]`, which the proxy-headers
    middleware has already resolved from X-Forwarded-For when the peer is a trusted proxy.
    """

    def __init__(self, app: ASGIApp, *, path: str = "/graphql") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        limits: RateLimits = scope["app"].state.rate_limits
        client = scope.get("client")
        try:
            window = await limits.hit_request(client[0] if client else "unknown")
        except LimitStoreUnavailableError as exc:
            await _refuse(scope, send, 503, exc.code, exc.message, exc.retry_after, [])
            return
        if window.allowed:
            await self.app(scope, receive, send)
            return
        wait = window.retry_after()
        message = f"Too many requests from this address; try again in {wait} s."
        await _refuse(scope, send, 429, RateLimitedError.code, message, wait, rate_limit_headers(window))


async def _refuse(
    scope: Scope, send: Send, status: int, code: str, message: str, retry_after: int, extra: list[tuple[bytes, bytes]]
) -> None:
    if scope["type"] == "websocket":
        # Closing before accepting answers the handshake with 403; the reason says why.
        await send({"type": "websocket.close", "code": 1013, "reason": message[:120]})
        return
    request_id = scope.get("state", {}).get("request_id")
    body = refusal_body(message, code, request_id)
    accept = next((value.decode("latin-1") for key, value in scope["headers"] if key == b"accept"), None)
    headers = [
        (b"content-type", negotiate_media_type(accept).encode()),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
