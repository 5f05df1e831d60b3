"""The fixed cost of a request through the real app in-process: CPU ms per request, and where it goes.

    cd <repo> && .venv/bin/python -m bench.fixed_cost            # CPU ms/request, best of 3
    cd <repo> && .venv/bin/python -m bench.fixed_cost --profile  # and a pyinstrument profile of one round
    BENCH_PROFILE_ALL=1 .venv/bin/python -m bench.fixed_cost --profile  # with FastAPI's and Strawberry's frames

`POST /graphql {"query": "{ __typename }"}` resolves no field and touches no table: what it costs
is the router, the context, authentication, the extensions and the middleware. `GET /health` is
the middleware stack alone, and the empty ASGI app the cost of the client and transport (httpx's
ASGI transport), to subtract. The app runs on the bench database (`make bench` creates it).
"""

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from starlette.types import Receive, Scope, Send

REQUESTS = 2000
ROUNDS = 3
TYPENAME = b'{"query":"{ __typename }"}'
JSON = {"content-type": "application/json"}


async def _empty_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def _cpu_ms_per_request(send: Callable[[], Awaitable[object]], requests: int) -> float:
    started = time.process_time()
    for _ in range(requests):
        await send()
    return (time.process_time() - started) * 1000 / requests


async def measure(requests: int, rounds: int, profile: bool) -> dict[str, float]:
    """Best-of-`rounds` CPU ms per request of each kind of request."""
    os.environ.setdefault("APP_ENV", "development")
    os.environ.setdefault("GRAPHQL_RATE_LIMIT", "1000000000/minute")
    os.environ.setdefault("COST_BUDGET", "1000000000000/minute")
    from api.app import create_app  # after the environment: Settings reads it
    from api.settings import Settings
    from bench.config import BenchConfig

    database_url = BenchConfig.from_env().database_url  # the bench database: neither request sends a statement
    app = create_app(Settings(database_url=database_url, log_level="WARNING", _env_file=None))
    results: dict[str, float] = {}
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://bench") as client,
        AsyncClient(transport=ASGITransport(app=_empty_app), base_url="http://bench") as empty,
    ):
        kinds: dict[str, Callable[[], Awaitable[object]]] = {
            "empty ASGI app (transport)": lambda: empty.get("/"),
            "GET /health": lambda: client.get("/health"),
            "POST /graphql { __typename }": lambda: client.post("/graphql", content=TYPENAME, headers=JSON),
        }
        response = await client.post("/graphql", content=TYPENAME, headers=JSON)
        if response.status_code != 200 or response.json().get("data") != {"__typename": "Query"}:
            raise RuntimeError(f"unexpected answer: {response.status_code} {response.text[:300]}")
        for name, send in kinds.items():
            await _cpu_ms_per_request(send, requests // 10)  # warm-up
            results[name] = min([await _cpu_ms_per_request(send, requests) for _ in range(rounds)])
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002, async_mode="disabled")
            with profiler:
                await _cpu_ms_per_request(kinds["POST /graphql { __typename }"], requests)
            every_frame = bool(os.environ.get("BENCH_PROFILE_ALL"))  # pyinstrument hides library frames otherwise
            print(profiler.output_text(unicode=False, color=False, show_all=every_frame, short_mode=False))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--profile", action="store_true")
    arguments = parser.parse_args()
    # As under gunicorn (gunicorn.conf.py): every metric sample goes to a file of the process's own.
    metrics_dir = tempfile.mkdtemp(prefix="bench-fixed-cost-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        results = asyncio.run(measure(arguments.requests, arguments.rounds, arguments.profile))
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    transport = results["empty ASGI app (transport)"]
    for name, value in results.items():
        print(f"{name:<32} {value:6.3f} ms CPU/request  ({value - transport:6.3f} without the transport)")


if __name__ == "__main__":
    main()
