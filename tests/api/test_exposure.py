"""What the service shows the public: /metrics to scrapers only, no schema guesses in production."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from ipaddress import ip_network
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from graphql import get_introspection_query
from httpx import ASGITransport, AsyncClient

from api.app import create_app
from api.metrics import is_allowed_peer
from api.settings import LOOPBACK, AppEnv, Settings
from tests.auth import Account

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


INTROSPECT = "{ __schema { queryType { name } } }"


def _introspected(answer: dict[str, Any]) -> bool:
    if answer.get("data") == {"__schema": {"queryType": {"name": "Query"}}}:
        return True
    assert {error["extensions"]["code"] for error in answer["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
    assert "introspection has been disabled" in answer["errors"][0]["message"]
    assert "data" not in answer
    return False


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, {"anonymous": False, "customer": False, "customer key": False, "staff": True, "staff key": True}),
        (
            {"introspection_roles": ["ADMIN"]},
            {"anonymous": False, "customer": False, "customer key": False, "staff": False, "staff key": False},
        ),
        ({"introspection": True}, dict.fromkeys(("anonymous", "customer", "customer key", "staff", "staff key"), True)),
        (
            {"introspection": False},
            dict.fromkeys(("anonymous", "customer", "customer key", "staff", "staff key"), False),
        ),
    ],
    ids=["production default: staff and staff keys", "admins only", "on for all", "off for all"],
)
async def test_introspection_in_production_is_for_the_roles_that_need_it(
    connect: Connect,
    changes: dict[str, Any],
    expected: dict[str, bool],
    customer: Account,
    customer_api_key: Account,
    staff: Account,
    staff_api_key: Account,
) -> None:
    # given
    callers = {
        "anonymous": {},
        "customer": customer.headers,
        "customer key": customer_api_key.headers,
        "staff": staff.headers,
        "staff key": staff_api_key.headers,
    }

    # when
    async with connect(app_env=AppEnv.PRODUCTION, **changes) as http:
        answers = {
            name: (await http.post("/graphql", json={"query": INTROSPECT}, headers=headers)).json()
            for name, headers in callers.items()
        }

    # then
    assert {name: _introspected(answer) for name, answer in answers.items()} == expected


async def test_an_admin_may_introspect_when_staff_may_and_typename_is_never_refused(
    connect: Connect, admin: Account
) -> None:
    # when
    async with connect(app_env=AppEnv.PRODUCTION) as http:
        as_admin = (await http.post("/graphql", json={"query": INTROSPECT}, headers=admin.headers)).json()
        typename = (await http.post("/graphql", json={"query": "{ __typename }"})).json()
        fragment = (
            await http.post(
                "/graphql", json={"query": 'query { ...Q } fragment Q on Query { __type(name: "Product") { name } }'}
            )
        ).json()

    # then
    assert _introspected(as_admin)
    assert typename["data"] == {"__typename": "Query"}
    assert [error["extensions"]["code"] for error in fragment["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]


async def test_allowed_introspection_still_pays_its_cost(connect: Connect, staff: Account) -> None:
    # given
    full = get_introspection_query(descriptions=True)

    # when
    async with connect(app_env=AppEnv.PRODUCTION, query_max_cost=50) as http:
        answer = (await http.post("/graphql", json={"query": full}, headers=staff.headers)).json()
        small = (await http.post("/graphql", json={"query": INTROSPECT}, headers=staff.headers)).json()

    # then
    assert [error["extensions"]["code"] for error in answer["errors"]] == ["QUERY_TOO_COMPLEX"]
    assert small["extensions"]["cost"]["requested"] > 0
