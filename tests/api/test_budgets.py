"""Budgets per client: the cost budget, the /graphql request rate per IP, and the sign-in limits."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.settings import Settings
from schema.rate_limits import client_network
from tests.auth import bearer
from tests.factories import create_user
from tests.graphql import error_codes, post

COSTS_21 = "{ products { nodes { id } } }"  # 1 + 20 x 1
COSTS_1 = '{ product(slug: "nothing") { id } }'
SIGN_IN = "mutation ($input: TokenCreateInput!) { tokenCreate(input: $input) { accessToken userErrors { code } } }"
MAKE_APP = Callable[..., AbstractAsyncContextManager[FastAPI]]


@pytest.fixture
def make_app(settings: Settings) -> MAKE_APP:
    @asynccontextmanager
    async def running(**overrides: Any) -> AsyncIterator[FastAPI]:
        application = create_app(settings.model_copy(update=overrides))
        async with LifespanManager(application):
            yield application

    return running


def _client(app: FastAPI, ip: str = "127.0.0.1") -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app, client=(ip, 50000)), base_url="http://testserver")


async def _clear_of_window_edge(window_seconds: int) -> None:
    # Budgets are fixed windows aligned to the clock; a test must not straddle two of them.
    left = window_seconds - time.time() % window_seconds
    if left < 5:
        await asyncio.sleep(left + 0.1)


async def test_the_cost_budget_admits_until_spent_then_429_with_headers(make_app: MAKE_APP) -> None:
    # given
    await _clear_of_window_edge(60)
    async with make_app(cost_budget="50/minute") as app, _client(app) as client:
        # when
        answers = [await client.post("/graphql", json={"query": COSTS_21}) for _ in range(3)]
        cheap = await client.post("/graphql", json={"query": COSTS_1})

    # then: 21 + 21 spent, 21 more would pass 50; the refusal spends nothing, so 8 are left for the cheap one
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.json()["extensions"]["cost"]["remaining"] for a in answers] == [29, 8, 8]
    refused = answers[2]
    assert error_codes(refused.json()) == ["RATE_LIMITED"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Limit"] == "50"
    assert refused.headers["RateLimit-Remaining"] == "8"
    assert refused.headers["RateLimit-Policy"] == "50;w=60"
    assert 1 <= int(refused.headers["RateLimit-Reset"]) <= 60
    assert cheap.status_code == 200
    assert cheap.json()["extensions"]["cost"]["remaining"] == 7


async def test_concurrent_requests_of_two_clients_each_get_their_own_status_and_headers(make_app: MAKE_APP) -> None:
    # given: one client about to spend its budget, another with all of its own
    await _clear_of_window_edge(60)
    async with (
        make_app(cost_budget="50/minute") as app,
        _client(app, "10.0.0.1") as spender,
        _client(app, "10.0.0.2") as other,
    ):
        # when: their requests run at once
        answers = await asyncio.gather(
            *(spender.post("/graphql", json={"query": COSTS_21}) for _ in range(3)),
            *(other.post("/graphql", json={"query": COSTS_1}) for _ in range(10)),
        )

    # then: each answer's status and RateLimit-* headers are its own client's, as its body reports
    spent, cheap = answers[:3], answers[3:]
    assert sorted(answer.status_code for answer in spent) == [200, 200, 429]
    assert [answer.status_code for answer in cheap] == [200] * 10
    assert sorted(int(answer.headers["RateLimit-Remaining"]) for answer in cheap) == list(range(40, 50))
    for answer in answers:
        assert answer.headers["RateLimit-Remaining"] == str(answer.json()["extensions"]["cost"]["remaining"])
        assert ("retry-after" in answer.headers) is (answer.status_code == 429)


async def test_each_client_has_its_own_budget(make_app: MAKE_APP, db_session: AsyncSession) -> None:
    # given
    await _clear_of_window_edge(60)
    user = await create_user(db_session)
    await db_session.commit()
    async with (
        make_app(cost_budget="30/minute") as app,
        _client(app, "10.0.0.1") as one,
        _client(app, "10.0.0.2") as two,
    ):
        signed_in = bearer(app, user).headers
        # when
        first_ip = [(await one.post("/graphql", json={"query": COSTS_21})).status_code for _ in range(2)]
        other_ip = (await two.post("/graphql", json={"query": COSTS_21})).status_code
        user_on_first_ip = (await one.post("/graphql", json={"query": COSTS_21}, headers=signed_in)).status_code

    # then: anonymous callers are counted by IP; a signed-in user by account, wherever they are
    assert first_ip == [200, 429]
    assert other_ip == 200
    assert user_on_first_ip == 200


async def test_the_request_rate_per_ip_refuses_before_reading_the_body(make_app: MAKE_APP) -> None:
    # given
    await _clear_of_window_edge(60)
    async with make_app(graphql_rate_limit="3/minute") as app, _client(app, "10.0.0.7") as client:
        # when: even documents that would never parse are counted
        statuses = [(await client.post("/graphql", content=b"{ broken")).status_code for _ in range(3)]
        refused = await client.post("/graphql", json={"query": "{ __typename }"})
        async with _client(app, "10.0.0.8") as elsewhere:
            other = await elsewhere.post("/graphql", json={"query": "{ __typename }"})

    # then
    assert 429 not in statuses
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/json")
    assert error_codes(refused.json()) == ["RATE_LIMITED"]
    assert refused.json()["errors"][0]["extensions"]["requestId"] == refused.headers["X-Request-ID"]
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert int(refused.headers["Retry-After"]) >= 1
    assert other.status_code == 200


async def test_x_forwarded_for_is_believed_only_from_trusted_proxies(make_app: MAKE_APP) -> None:
    # given
    await _clear_of_window_edge(60)
    limits = {"graphql_rate_limit": "1/minute", "trusted_proxies": ["127.0.0.1"]}
    async with make_app(**limits) as app, _client(app, "127.0.0.1") as proxy, _client(app, "203.0.113.5") as direct:
        query = {"query": "{ __typename }"}
        # when: behind the trusted proxy, each forwarded client has its own count
        behind = [
            (await proxy.post("/graphql", json=query, headers={"X-Forwarded-For": ip})).status_code
            for ip in ("198.51.100.1", "198.51.100.2", "198.51.100.1")
        ]
        # a client that is not a proxy cannot pick its address
        spoofed = [
            (await direct.post("/graphql", json=query, headers={"X-Forwarded-For": ip})).status_code
            for ip in ("198.51.100.3", "198.51.100.4")
        ]

    # then
    assert behind == [200, 200, 429]
    assert spoofed == [200, 429]


async def _sign_in(client: AsyncClient, email: str) -> list[str]:
    variables = {"input": {"email": email, "password": "not the password at all"}}
    return error_codes(await post(client, SIGN_IN, variables)) or ["OK"]


async def test_sign_in_attempts_are_limited_per_ip_across_addresses(make_app: MAKE_APP) -> None:
    # given
    async with make_app(login_rate_limit_per_ip="3/minute") as app, _client(app, "10.1.0.1") as client:
        # when
        codes = [await _sign_in(client, f"user{n}@example.com") for n in range(4)]
        async with _client(app, "10.1.0.2") as elsewhere:
            other = await _sign_in(elsewhere, "user9@example.com")

    # then
    assert codes == [["OK"], ["OK"], ["OK"], ["RATE_LIMITED"]]
    assert other == ["OK"]


async def test_sign_in_attempts_are_limited_per_address_across_ips(make_app: MAKE_APP) -> None:
    # given
    async with make_app(login_rate_limit_per_email="3/minute") as app:
        # when
        codes = []
        for n in range(4):
            async with _client(app, f"10.2.0.{n}") as client:
                codes.append(await _sign_in(client, "Victim@Example.com "))
        async with _client(app, "10.2.0.9") as client:
            other = await _sign_in(client, "someone.else@example.com")

    # then
    assert codes == [["OK"], ["OK"], ["OK"], ["RATE_LIMITED"]]
    assert other == ["OK"]


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("unknown", "unknown"),
    ],
)
def test_clients_are_keyed_by_ipv4_address_or_ipv6_prefix(ip: str, network: str) -> None:
    assert client_network(ip) == network


async def test_addresses_of_one_ipv6_prefix_share_one_request_rate(make_app: MAKE_APP) -> None:
    # given
    await _clear_of_window_edge(60)
    async with make_app(graphql_rate_limit="1/minute") as app:
        # when: two addresses of one /64, then one of another
        statuses = []
        for ip in ("2001:db8:0:1::a", "2001:db8:0:1::b", "2001:db8:0:2::a"):
            async with _client(app, ip) as client:
                statuses.append((await client.post("/graphql", json={"query": "{ __typename }"})).status_code)

    # then
    assert statuses == [200, 429, 200]
