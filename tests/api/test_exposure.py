"""What the service shows the public: /metrics to scrapers only, no schema guesses in production."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from ipaddress import ip_network
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from api.app import create_app
from api.metrics import is_allowed_peer
from api.settings import LOOPBACK, AppEnv, Settings

LOOPBACK_PEER = ("127.0.0.1", 40000)
PUBLIC_PEER = ("203.0.113.7", 40000)
MISSPELT_FIELD = "{ prodcts { totalCount } }"
MISSPELT_ENUM = (
    "query ($f: ProductOrderField!) { products(orderBy: {field: $f, direction: ASC}) { totalCount } }",
    {"f": "PRCE"},
)
MISSPELT_ARGUMENT = "{ products(frist: 2) { totalCount } }"

Connect = Callable[..., AbstractAsyncContextManager[AsyncClient]]


@pytest.fixture
def connect(settings: Settings) -> Connect:
    """Open a client on an app built with these setting changes, as seen from this peer address."""

    @asynccontextmanager
    async def open_client(peer: tuple[str, int] = LOOPBACK_PEER, **changes: Any) -> AsyncIterator[AsyncClient]:
        if changes.get("app_env") is AppEnv.PRODUCTION:
            changes = {"cors_origins": ["https://shop.example.com"], "trusted_hosts": ["testserver"], **changes}
        app = create_app(settings.model_copy(update=changes))
        transport = ASGITransport(app=app, client=peer)
        async with LifespanManager(app), AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http

    return open_client


async def test_metrics_in_production_answer_loopback_only_and_look_like_no_route_to_others(connect: Connect) -> None:
    # when
    async with connect(LOOPBACK_PEER, app_env=AppEnv.PRODUCTION) as local:
        scraped = await local.get("/metrics")
    async with connect(PUBLIC_PEER, app_env=AppEnv.PRODUCTION) as public:
        refused = await public.get("/metrics", headers={"X-Request-ID": "m-1"})
        unknown = await public.get("/no-such-route", headers={"X-Request-ID": "m-1"})

    # then
    assert scraped.status_code == 200
    assert "graphql_operations_total" in scraped.text
    assert refused.status_code == 404
    assert refused.json() == unknown.json()
    assert refused.json()["errors"][0]["extensions"] == {"code": "NOT_FOUND", "requestId": "m-1"}


async def test_metrics_allowed_ips_replaces_the_default(connect: Connect) -> None:
    # given
    allowed = [ip_network("203.0.113.0/24")]

    # when
    async with connect(PUBLIC_PEER, app_env=AppEnv.PRODUCTION, metrics_allowed_ips=allowed) as scraper:
        listed = await scraper.get("/metrics")
    async with connect(LOOPBACK_PEER, app_env=AppEnv.PRODUCTION, metrics_allowed_ips=allowed) as local:
        unlisted = await local.get("/metrics")

    # then
    assert listed.status_code == 200
    assert unlisted.status_code == 404


async def test_metrics_are_open_to_everyone_in_development(connect: Connect) -> None:
    # when
    async with connect(PUBLIC_PEER) as public:
        response = await public.get("/metrics")

    # then
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("127.8.9.10", True),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("testclient", False),
        (None, False),
    ],
)
def test_a_peer_is_allowed_only_inside_a_listed_network(host: str | None, allowed: bool) -> None:
    # when / then: the production default, loopback
    assert is_allowed_peer(host, LOOPBACK) is allowed


def _messages(body: dict[str, Any]) -> list[str]:
    return [error["message"] for error in body["errors"]]


async def _misspellings(http: AsyncClient) -> list[str]:
    messages: list[str] = []
    for query, variables in ((MISSPELT_FIELD, None), MISSPELT_ENUM, (MISSPELT_ARGUMENT, None)):
        response = await http.post("/graphql", json={"query": query, "variables": variables})
        messages += _messages(response.json())
    return messages


async def test_suggestions_are_given_in_development(connect: Connect) -> None:
    # when
    async with connect() as http:
        messages = await _misspellings(http)

    # then
    assert messages == [
        "Cannot query field 'prodcts' on type 'Query'. Did you mean 'products' or 'product'?",
        "Variable '$f' has invalid value: Value 'PRCE' does not exist in 'ProductOrderField' enum. "
        "Did you mean the enum value 'PRICE'?",
        "Unknown argument 'frist' on field 'Query.products'. Did you mean 'first' or 'last'?",
    ]


@pytest.mark.parametrize(
    "changes",
    [{"app_env": AppEnv.PRODUCTION}, {"graphql_suggestions": False}],
    ids=["production default", "turned off"],
)
async def test_suggestions_are_left_out_in_production_or_when_turned_off(
    connect: Connect, changes: dict[str, Any]
) -> None:
    # when
    async with connect(**changes) as http:
        messages = await _misspellings(http)

    # then
    assert messages == [
        "Cannot query field 'prodcts' on type 'Query'.",
        "Variable '$f' has invalid value: Value 'PRCE' does not exist in 'ProductOrderField' enum.",
        "Unknown argument 'frist' on field 'Query.products'.",
    ]


async def test_suggestions_can_be_turned_on_in_production(connect: Connect) -> None:
    # when
    async with connect(app_env=AppEnv.PRODUCTION, graphql_suggestions=True) as http:
        messages = await _misspellings(http)

    # then
    assert all("Did you mean" in message for message in messages)


@pytest.mark.parametrize(("changes", "allowed"), [({}, False), ({"introspection": True}, True)])
async def test_introspection_is_off_in_production_unless_enabled(
    connect: Connect, changes: dict[str, Any], allowed: bool
) -> None:
    # when
    async with connect(app_env=AppEnv.PRODUCTION, **changes) as http:
        answer = (await http.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})).json()

    # then
    if allowed:
        assert answer["data"] == {"__schema": {"queryType": {"name": "Query"}}}
    else:
        assert {error["extensions"]["code"] for error in answer["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
        assert "data" not in answer
