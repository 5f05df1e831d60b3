"""Prometheus at the edge: HTTP metrics (prometheus-fastapi-instrumentator), the pool and the loop, /metrics.

The GraphQL layer's own series (operations, cost, limits, loaders) live in `schema.metrics`; they
share the default registry, so /metrics serves them all. Under gunicorn, set
PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py does): every worker writes its samples there and
/metrics sums them, whichever worker answers.

/metrics answers only peers in METRICS_ALLOWED_IPS (loopback in production); anyone else gets the
404 of a route that does not exist.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from functools import cache
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import HTTPException
from prometheus_client import Gauge
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator import metrics as prometheus_metrics
from prometheus_fastapi_instrumentator.metrics import Info
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from domains.common.background import running

LAG_SAMPLE_SECONDS = 0.5

DB_POOL_SIZE = Gauge("db_pool_size", "Connections the pool keeps.", multiprocess_mode="livesum")
DB_POOL_CHECKED_OUT = Gauge("db_pool_checked_out", "Connections in use.", multiprocess_mode="livesum")
DB_POOL_OVERFLOW = Gauge("db_pool_overflow", "Connections open beyond the pool size.", multiprocess_mode="livesum")
ASYNCIO_TASKS = Gauge("asyncio_tasks", "Tasks alive on the event loop, last sample.", multiprocess_mode="livesum")
EVENT_LOOP_LAG = Gauge(
    "event_loop_lag_seconds", "How late the event loop ran a timer, last sample.", multiprocess_mode="livemax"
)


@cache
def _http_metrics() -> tuple[Callable[[Info], None], ...]:
    """`http_requests_total{method,status,handler}` and `http_request_duration_seconds{method,handler}`.

    Registered once per process: a second app (tests build many) must feed the same series, while
    the instrumentator's own would find them taken and silently record nothing. Not its `default()`
    set: that adds request and response size summaries and a second, unlabelled latency histogram,
    five series written per request (under gunicorn each a locked write to its mmapped file) where
    these two answer "how many, how fast"; the one histogram has Prometheus' default buckets (5 ms
    to 10 s) instead of the default set's three.
    """
    count = prometheus_metrics.requests()
    duration = prometheus_metrics.latency(should_include_status=False)
    if count is None or duration is None:  # only when the series exist already, which @cache rules out
        msg = "the HTTP metrics are registered already"
        raise RuntimeError(msg)
    return count, duration


def is_allowed_peer(host: str | None, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    """Tell whether a peer address lies in one of these networks; a non-IP peer (a Unix socket) never does."""
    try:
        address = ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d
    return any(address in network for network in networks)


def instrument(app: FastAPI, allowed: Sequence[IPv4Network | IPv6Network]) -> None:
    """Count and time HTTP requests and serve every metric at /metrics to the allowed peers only."""

    def scrapers_only(request: Request) -> None:
        if not is_allowed_peer(request.client.host if request.client else None, allowed):
            raise HTTPException(404, "Not Found")

    instrumentator = Instrumentator(excluded_handlers=["/metrics"], should_group_status_codes=False)
    instrumentator.add(*_http_metrics()).instrument(app).expose(
        app, endpoint="/metrics", include_in_schema=False, dependencies=[Depends(scrapers_only)]
    )


def _sample_pool(engine: AsyncEngine) -> None:
    pool = engine.pool
    if isinstance(pool, QueuePool):
        DB_POOL_SIZE.set(pool.size())
        DB_POOL_CHECKED_OUT.set(pool.checkedout())
        DB_POOL_OVERFLOW.set(max(0, pool.overflow()))


@contextlib.asynccontextmanager
async def sampling(engine: AsyncEngine) -> AsyncIterator[None]:
    """Sample the event loop's lag and the pool's state in the background while the block runs."""

    async def loop() -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(LAG_SAMPLE_SECONDS)
            EVENT_LOOP_LAG.set(max(0.0, time.perf_counter() - started - LAG_SAMPLE_SECONDS))
            ASYNCIO_TASKS.set(len(asyncio.all_tasks()))
            _sample_pool(engine)

    async with running("metrics-sampler", loop()):
        yield
