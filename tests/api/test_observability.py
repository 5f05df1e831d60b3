"""Logs and metrics of the running app, read the way an operator reads them."""

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.settings import AppEnv, Settings
from domains.products import repository as products_repository
from tests import factories
from tests.graphql import gql, post

TOP_PRODUCTS = "query TopProducts { products(first: 2) { nodes { name } } }"


@pytest.fixture
async def json_client(settings: Settings) -> AsyncIterator[AsyncClient]:
    """The app as production runs it: JSON log lines, every logger at DEBUG."""
    production = settings.model_copy(
        update={
            "app_env": AppEnv.PRODUCTION,
            "log_level": "DEBUG",
            "cors_origins": ["https://shop.example.com"],
            "trusted_hosts": ["testserver"],
        }
    )
    app = create_app(production)
    transport = ASGITransport(app=app)
    async with LifespanManager(app), AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def log_output(json_client: AsyncClient) -> Iterator[io.StringIO]:
    """Everything the app logs from now on, rendered exactly as its own handler renders it."""
    root = logging.getLogger()
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    try:
        yield output
    finally:
        root.removeHandler(handler)


def _lines(output: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.getvalue().splitlines() if line.startswith("{")]


async def _explode(*_: Any, **__: Any) -> int:
    msg = "database exploded: password=hunter2 at 10.0.0.5"
    raise RuntimeError(msg)


async def test_every_line_of_a_request_carries_its_request_id_and_the_access_line_names_the_operation(
    json_client: AsyncClient, log_output: io.StringIO
) -> None:
    # when
    response = await json_client.post("/graphql", json={"query": TOP_PRODUCTS}, headers={"X-Request-ID": "abc-123"})

    # then: the test client's own line (logger httpx) is not the app's
    lines = [line for line in _lines(log_output) if line.get("logger") != "httpx"]
    access = [line for line in lines if line["event"] == "http.request"]
    assert response.headers["X-Request-ID"] == "abc-123"
    assert lines
    assert {line.get("request_id") for line in lines} == {"abc-123"}
    assert len(access) == 1
    assert access[0] | {"duration_ms": 0, "timestamp": ""} == access[0] | {
        "method": "POST",
        "path": "/graphql",
        "status": 200,
        "operation_name": "TopProducts",
        "operation_type": "query",
        "principal": "anonymous",
        "cost": 1 + 2,
        "duration_ms": 0,
        "timestamp": "",
    }


async def test_an_unexpected_exception_is_one_error_line_with_traceback_and_a_masked_answer(
    json_client: AsyncClient, log_output: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.setattr(products_repository, "count_products", _explode)

    # when
    response = await json_client.post(
        "/graphql", json={"query": "{ products { totalCount } }"}, headers={"X-Request-ID": "abc-123"}
    )

    # then
    errors = [line for line in _lines(log_output) if line["level"] == "error"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "abc-123"
    assert "Traceback" in errors[0]["exception"]
    assert "database exploded" in errors[0]["exception"]
    assert response.json()["errors"] == [
        {
            "message": "Internal server error",
            "locations": [{"line": 1, "column": 14}],
            "path": ["products", "totalCount"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "abc-123"},
        }
    ]
    assert "hunter2" not in response.text


async def test_a_full_session_never_logs_a_password_token_key_or_authorization_header(
    json_client: AsyncClient, log_output: io.StringIO
) -> None:
    # given
    password = "correct horse battery staple"

    # when: sign up, sign in (and fail once), use the token, make and use a key, refresh, sign out
    await gql(
        json_client,
        'mutation ($p: String!) { accountRegister(input: {email: "log@example.com", password: $p, name: "L"}) '
        "{ userErrors { code } } }",
        {"p": password},
    )
    await post(
        json_client,
        'mutation { tokenCreate(input: {email: "log@example.com", password: "wrong-password-1"}) { accessToken } }',
    )
    tokens = (
        await gql(
            json_client,
            'mutation ($p: String!) { tokenCreate(input: {email: "log@example.com", password: $p}) '
            "{ accessToken refreshToken } }",
            {"p": password},
        )
    )["tokenCreate"]
    bearer = {"Authorization": f"Bearer {tokens['accessToken']}"}
    key = (await gql(json_client, 'mutation { apiKeyCreate(input: {name: "k"}) { secret } }', headers=bearer))[
        "apiKeyCreate"
    ]["secret"]
    await gql(json_client, "{ me { email } }", headers={"X-API-Key": key})
    await post(json_client, "{ me { email } }", headers={"Authorization": "Bearer forged.token.value"})
    refreshed = (
        await gql(
            json_client,
            "mutation ($t: String!) { tokenRefresh(input: {refreshToken: $t}) { refreshToken } }",
            {"t": tokens["refreshToken"]},
        )
    )["tokenRefresh"]
    await gql(
        json_client,
        "mutation ($t: String!) { tokenRevoke(input: {refreshToken: $t}) { revoked } }",
        {"t": refreshed["refreshToken"]},
    )

    # then: the session was logged (one access line per request at least), and no secret in it
    logged = log_output.getvalue()
    assert logged.count('"event": "http.request"') >= 8
    secrets = {
        "password": password,
        "wrong password": "wrong-password-1",
        "access token": tokens["accessToken"],
        "refresh token": tokens["refreshToken"],
        "rotated refresh token": refreshed["refreshToken"],
        "api key secret": key.partition(".")[2],
        "forged bearer": "forged.token.value",
    }
    assert [name for name, secret in secrets.items() if secret in logged] == []
    assert not re.search(r"authorization", logged, re.IGNORECASE)


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") or line.startswith(f"{name} "):
            metric, _, value = line.rpartition(" ")
            found = metric[len(name) :].strip("{}")
            if ",".join(sorted(found.split(","))) == wanted or (not labels and not found):
                return float(value)
    return 0.0


async def test_metrics_count_http_requests_graphql_operations_errors_and_refusals(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    user = await factories.create_user(db_session)
    await db_session.commit()
    before = (await client.get("/metrics")).text

    # when
    await post(client, TOP_PRODUCTS)
    await post(client, "{ products(first: 1000) { totalCount } }")
    for _ in range(6):
        await post(
            client,
            'mutation ($e: String!) { tokenCreate(input: {email: $e, password: "x"}) { accessToken } }',
            {"e": user.email},
        )
    after = (await client.get("/metrics")).text

    # then
    def delta(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    assert delta("graphql_operations_total", operation="TopProducts", type="query", outcome="ok") == 1
    assert delta("graphql_operations_total", operation="anonymous", type="query", outcome="error") == 1
    assert delta("graphql_errors_total", code="BAD_USER_INPUT") == 1
    assert delta("graphql_errors_total", code="RATE_LIMITED") == 1
    assert delta("rate_limit_refusals_total", limit="token_create") == 1
    assert delta("http_requests_total", handler="/graphql", method="POST", status="200") == 7
    assert delta("http_requests_total", handler="/graphql", method="POST", status="429") == 1
    assert delta("http_request_duration_seconds_count", handler="/graphql", method="POST") == 8
    assert delta("http_request_duration_seconds_bucket", handler="/graphql", method="POST", le="10.0") == 8
    assert "dataloader_batch_size_bucket" in after
    assert "event_loop_lag_seconds" in after
    assert "db_pool_checked_out" in after


async def test_readiness_names_an_unreachable_redis(settings: Settings) -> None:
    # given: Redis configured at a port where nothing listens
    app = create_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))

    # when
    async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        response = await http.get("/health/ready")

    # then
    assert response.status_code == 503
    assert response.json()["failing"] == ["redis"]


async def test_an_exception_outside_graphql_is_a_bare_500_naming_the_request_id(
    app: FastAPI, client: AsyncClient
) -> None:
    # given: a route that fails (none ship; health and metrics are the only REST routes)
    async def broken() -> None:
        msg = "secret internals"
        raise RuntimeError(msg)

    app.add_api_route("/broken", broken)

    # when
    response = await client.get("/broken", headers={"X-Request-ID": "abc-123"})

    # then
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error", "requestId": "abc-123"}
