"""Rate limits and budgets, in Redis when REDIS_URL is set (shared by every worker and instance), else in-process.

Three limits, all on the `limits` package's async storage (`limits.aio`, created by `api.limits`):
- the sign-in limit, per client IP + e-mail address, per IP and per address (moving windows);
- the request rate of `/graphql` per client IP, checked before the body is read;
- the cost budget per client (user, API key, or IP when anonymous), spent by each operation's
  static cost. These two use fixed windows aligned to the clock, so one INCRBY answers both
  "allowed?" and "how much is left?", and the window's end is known without asking Redis.

When the store cannot be reached, RATE_LIMIT_FAILURE_MODE decides: "open" (the default) admits
the request, logs a warning and counts `rate_limit_storage_errors_total`; "closed" refuses with
503. Either way the client never sees a 500.
"""

import hashlib
import ipaddress
import math
import time
from dataclasses import dataclass
from functools import lru_cache

import structlog
from limits import RateLimitItem, parse, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from domains.common.exceptions import RateLimitedError, ServiceUnavailableError
from schema import metrics
from schema.settings import RateLimitSettings

LOGIN_LIMITED = "Too many sign-in attempts; try again later."
STORE_UNAVAILABLE = "The rate-limit store is unavailable; try again shortly."
STORE_RETRY_AFTER_SECONDS = 5
WARNING_INTERVAL_SECONDS = 30.0

logger = structlog.get_logger("schema.rate_limits")


class LimitStoreUnavailableError(ServiceUnavailableError):
    """The limits could not be counted and the service is configured to fail closed: HTTP 503."""

    def __init__(self) -> None:
        super().__init__(STORE_UNAVAILABLE, retry_after=STORE_RETRY_AFTER_SECONDS)


@dataclass(frozen=True, slots=True)
class Window:
    """One client's standing in one window of a limit; `remaining` is None when the store could not be asked."""

    limit: int
    remaining: int | None
    reset_at: float | None
    allowed: bool = True

    def retry_after(self) -> int:
        """Whole seconds until the window ends (at least 1)."""
        return max(1, math.ceil((self.reset_at or time.time()) - time.time()))


CLIENT_NETWORKS_CACHED = 4096


# A pure function of the address, asked twice per request (the request rate and the cost budget):
# ipaddress parses it each time otherwise.
@lru_cache(maxsize=CLIENT_NETWORKS_CACHED)
def client_network(ip: str) -> str:
    """Key an address for per-client limits: IPv4 as is, IPv6 by its /64 (one subscriber's whole prefix)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return ip


def _digest(value: str) -> str:
    # Keys hold no e-mail address in clear: Redis is not where personal data should pile up.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class RateLimits:
    """The process's rate limits and budgets, over one storage."""

    def __init__(self, storage: Storage, settings: RateLimitSettings) -> None:
        self.storage = storage
        self._moving = MovingWindowRateLimiter(storage)
        self._fail_open = settings.rate_limit_failure_mode == "open"
        self._login = [
            ("ip-email", parse_many(settings.login_rate_limit)),
            ("ip", parse_many(settings.login_rate_limit_per_ip)),
            ("email", parse_many(settings.login_rate_limit_per_email)),
        ]
        self.cost_budget: RateLimitItem = parse(settings.cost_budget)
        self.request_rate: RateLimitItem = parse(settings.graphql_rate_limit)
        self._last_warning = 0.0

    async def hit_login(self, *, client_ip: str, email: str) -> None:
        """Count one sign-in attempt per IP + address, per IP and per address; raise RateLimitedError past any."""
        address, network = _digest(email.strip().lower()), client_network(client_ip)
        keys = {"ip-email": (network, address), "ip": (network,), "email": (address,)}
        for scope, items in self._login:
            for item in items:
                identifiers = ("token-create", scope, *keys[scope])
                try:
                    if await self._moving.hit(item, *identifiers):
                        continue
                    stats = await self._moving.get_window_stats(item, *identifiers)
                except StorageError:
                    self._store_failed("token_create")
                    return
                metrics.RATE_LIMIT_REFUSALS.labels("token_create").inc()
                raise RateLimitedError(LOGIN_LIMITED, retry_after=max(1, math.ceil(stats.reset_time - time.time())))

    async def spend_cost(self, client: str, cost: int) -> Window:
        """Spend `cost` points of this client's budget (0 only reads it); a refused spend spends nothing."""
        return await self._spend(self.cost_budget, "cost", client, cost)

    async def hit_request(self, client_ip: str) -> Window:
        """Count one `/graphql` request from this IP."""
        return await self._spend(self.request_rate, "requests", client_network(client_ip), 1)

    async def _spend(self, item: RateLimitItem, name: str, client: str, amount: int) -> Window:
        expiry = item.get_expiry()
        index = int(time.time() // expiry)
        reset_at = float((index + 1) * expiry)
        key = item.key_for(name, client, str(index))
        try:
            count = await self.storage.incr(key, expiry, amount=amount)
            if count > item.amount and amount > 0:
                await self.storage.incr(key, expiry, amount=-amount)
                metrics.RATE_LIMIT_REFUSALS.labels(name).inc()
                return Window(item.amount, max(0, item.amount - (count - amount)), reset_at, allowed=False)
        except StorageError:
            self._store_failed(name)
            return Window(item.amount, None, None)
        return Window(item.amount, item.amount - count, reset_at)

    def _store_failed(self, name: str) -> None:
        metrics.RATE_LIMIT_STORAGE_ERRORS.labels(name).inc()
        now = time.monotonic()
        if now - self._last_warning >= WARNING_INTERVAL_SECONDS:
            # One line per interval: a dead Redis must not turn every request into a log line.
            self._last_warning = now
            logger.warning("rate_limit.store_unavailable", limit=name, failing="open" if self._fail_open else "closed")
        if not self._fail_open:
            raise LimitStoreUnavailableError

    async def close(self) -> None:
        """Stop the in-process store's expiry timer; Redis connections close with the app's client."""
        timer = getattr(self.storage, "timer", None)
        if timer is not None and not timer.done():
            timer.cancel()


def rate_limit_headers(window: Window) -> list[tuple[bytes, bytes]]:
    """The IETF RateLimit header fields (draft 7 names) describing one window."""
    headers = [(b"ratelimit-limit", str(window.limit).encode())]
    if window.remaining is not None:
        headers += [(b"ratelimit-remaining", str(window.remaining).encode())]
        headers += [(b"ratelimit-reset", str(window.retry_after()).encode())]
    return headers
