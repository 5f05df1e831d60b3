"""CORS: the usual local frontend dev servers may call the API in development; production allows only its list."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient, Response

from api.app import create_app
from api.settings import AppEnv, Settings

Connect = Callable[..., AbstractAsyncContextManager[AsyncClient]]
SHOP = "https://shop.example.com"


@pytest.fixture
def connect(settings: Settings) -> Connect:
    @asynccontextmanager
    async def open_client(**changes: Any) -> AsyncIterator[AsyncClient]:
        app = create_app(settings.model_copy(update=changes))
        async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
            yield http

    return open_client


async def _preflight(http: AsyncClient, origin: str) -> Response:
    return await http.options(
        "/graphql",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


async def _query(http: AsyncClient, origin: str) -> Response:
    return await http.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": origin})


@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://localhost:5173", "http://127.0.0.1:5173"])
async def test_development_lets_local_frontends_call_the_api(connect: Connect, origin: str) -> None:
    # when
    async with connect() as http:
        preflight = await _preflight(http, origin)
        answer = await _query(http, origin)

    # then
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert {"authorization", "content-type"} <= set(
        preflight.headers["access-control-allow-headers"].lower().split(", ")
    )
    assert answer.json()["data"] == {"__typename": "Query"}
    assert answer.headers["access-control-allow-origin"] == origin
    exposed = set(answer.headers["access-control-expose-headers"].lower().split(", "))
    assert {"x-request-id", "ratelimit-remaining", "etag"} <= exposed


async def test_development_refuses_other_origins(connect: Connect) -> None:
    # when
    async with connect() as http:
        preflight = await _preflight(http, "https://evil.example")
        answer = await _query(http, "https://evil.example")

    # then
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in answer.headers


async def test_an_empty_list_turns_cors_off_in_development(connect: Connect) -> None:
    # when
    async with connect(cors_origins=[]) as http:
        preflight = await _preflight(http, "http://localhost:3000")

    # then
    assert "access-control-allow-origin" not in preflight.headers


async def test_production_allows_its_own_origins_and_no_local_one(connect: Connect) -> None:
    # given
    production = {"app_env": AppEnv.PRODUCTION, "cors_origins": [SHOP], "trusted_hosts": ["t"]}

    # when
    async with connect(**production) as http:
        shop = await _preflight(http, SHOP)
        local = await _preflight(http, "http://localhost:3000")

    # then
    assert shop.headers["access-control-allow-origin"] == SHOP
    assert local.status_code == 400
    assert "access-control-allow-origin" not in local.headers
