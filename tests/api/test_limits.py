"""Query limits over HTTP: refused before any resolver runs, with the figure and the limit; cost on every answer."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from graphql.language import Lexer, Source, TokenKind
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.settings import Settings
from domains.users import models as users_models
from tests.graphql import count_statements, error_codes, post

# 15 levels of products -> category -> products, as in the issue: refused at depth, never run.
DEEP_ATTACK = "{ " + "products(first: 100) { nodes { category { " * 5 + "name" + " } } }" * 5 + " }"
ALIAS = "products(first: 100) { nodes { reviews(first: 100) { nodes { author { name } } } } }"
ALIAS_ATTACK = "{ " + " ".join(f"a{i}: {ALIAS}" for i in range(200)) + " }"
# 1 + 99 x (1 + 1 + 48) + (1 + 48) = 5000, the default limit
COST_5000 = (
    "{ products(first: 99) { nodes { reviews(first: 48) { nodes { id } } } } a: products(first: 48) { nodes { id } } }"
)
COST_5001 = COST_5000.replace(
    "a: products(first: 48) { nodes { id } }", "a: products(first: 48) { nodes { id } totalCount }"
)
PAGE = "query ($n: Int) { products(first: $n) { nodes { id } } }"
REGISTER = (
    "mutation ($input: AccountRegisterInput!) { accountRegister(input: $input) { user { id } userErrors { code } } }"
)


TOKENS_AT_LIMIT = '{ product(slug: "x") { id name slug sku description createdAt updatedAt inStock } }'
TOKENS_OVER = TOKENS_AT_LIMIT.replace("inStock", "inStock stock")


def _tokens(document: str) -> int:
    lexer = Lexer(Source(document))
    count = 0
    while lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


@pytest.fixture
async def small_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update={"query_max_tokens": _tokens(TOKENS_AT_LIMIT)}))
    async with LifespanManager(application):
        yield application


def _codes(body: dict[str, Any]) -> dict[str, Any]:
    extensions: dict[str, Any] = body["errors"][0]["extensions"]
    return {"code": extensions["code"], "requestId": extensions["requestId"]}


def _refusal(body: dict[str, Any]) -> dict[str, Any]:
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"], body
    assert not body.get("data")
    extensions: dict[str, Any] = body["errors"][0]["extensions"]
    assert extensions["requestId"]
    return extensions


async def test_the_deep_attack_of_the_issue_is_refused_before_any_statement(app: FastAPI, client: AsyncClient) -> None:
    # when
    with count_statements(app) as statements:
        body = await post(client, DEEP_ATTACK)

    # then
    refused = _refusal(body)
    assert (refused["measure"], refused["limit"]) == ("depth", 10)
    assert refused["value"] > 10
    assert statements == []


async def test_the_alias_attack_of_the_issue_is_refused_before_any_statement(app: FastAPI, client: AsyncClient) -> None:
    # when
    with count_statements(app) as statements:
        body = await post(client, ALIAS_ATTACK)

    # then: over the token limit before anything else is looked at
    assert _refusal(body)["measure"] == "tokens"
    assert statements == []


async def test_cost_at_the_limit_runs_and_one_over_is_refused_with_the_figure(client: AsyncClient) -> None:
    # when
    at_limit = await post(client, COST_5000)
    over = await post(client, COST_5001)

    # then
    assert "errors" not in at_limit
    assert at_limit["extensions"]["cost"]["requested"] == 5000
    assert _refusal(over) == {"measure": "cost", "value": 5001, "limit": 5000} | _codes(over)
    assert over["extensions"]["cost"]["requested"] == 5001


async def test_tokens_at_the_limit_pass_and_one_over_is_refused_by_the_parser(small_app: FastAPI) -> None:
    # given
    limit = _tokens(TOKENS_AT_LIMIT)
    async with AsyncClient(transport=ASGITransport(app=small_app), base_url="http://testserver") as client:
        # when
        passed = await post(client, TOKENS_AT_LIMIT)
        refused = await post(client, TOKENS_OVER)

    # then
    assert passed["data"] == {"product": None}
    assert "errors" not in passed
    assert _refusal(refused) == {"measure": "tokens", "value": limit + 1, "limit": limit} | _codes(refused)


async def test_page_size_at_the_limit_runs_and_one_over_is_bad_user_input(client: AsyncClient) -> None:
    # when
    at_limit = await post(client, PAGE, {"n": 100})
    over = await post(client, PAGE, {"n": 101})

    # then
    assert at_limit["data"] == {"products": {"nodes": []}}
    assert error_codes(over) == ["BAD_USER_INPUT"]
    assert "0 to 100" in over["errors"][0]["message"]


async def test_every_answer_reports_its_cost_even_a_refused_or_invalid_one(client: AsyncClient) -> None:
    # when
    answers = [
        await post(client, "{ products(first: 3) { nodes { id } } }"),
        await post(client, "{ nope }"),
        await post(client, DEEP_ATTACK),
        await post(client, "{ broken"),
    ]

    # then
    costs = [answer["extensions"]["cost"] for answer in answers]
    assert [cost["requested"] for cost in costs] == [4, 0, 0, 0]
    assert all(set(cost) == {"requested", "remaining", "resetAt"} for cost in costs)
    assert [cost["remaining"] for cost in costs] == [20_000 - 4] * 4


async def test_a_nul_character_is_bad_user_input_naming_the_argument_and_stores_nothing(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    register = {"email": "nul@example.com", "password": "long enough password", "name": "Nul\x00Byte"}

    # when
    by_variable = await post(client, REGISTER, {"input": register})
    by_literal = await post(
        client,
        'mutation { accountRegister(input: {email: "x@example.com", password: "long enough password", '
        'name: "a\\u0000b"}) { user { id } } }',
    )

    # then
    assert error_codes(by_variable) == ["BAD_USER_INPUT"]
    assert "`$input.name`" in by_variable["errors"][0]["message"]
    assert error_codes(by_literal) == ["BAD_USER_INPUT"]
    assert "`accountRegister(input).name`" in by_literal["errors"][0]["message"]
    assert await db_session.scalar(select(func.count()).select_from(users_models.User)) == 0


async def test_an_introspection_nested_past_its_depth_is_too_complex(client: AsyncClient) -> None:
    # when
    body = await post(client, "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }")

    # then
    assert set(error_codes(body)) == {"QUERY_TOO_COMPLEX"}
    assert body["errors"][0]["extensions"]["measure"] == "introspection depth"


async def test_a_repeated_document_is_charged_by_the_values_of_the_variables_its_cost_reads(
    client: AsyncClient,
) -> None:
    # given: one document whose cost reads `$n` and `$more`, and not `$slug`
    document = (
        "query ($n: Int, $more: Boolean!, $slug: String!) { products(first: $n) { nodes { id } } "
        "extra: products(first: 2) @include(if: $more) { nodes { id } } product(slug: $slug) { id } }"
    )

    # when: the same text again and again, with the values changing
    requested = []
    for variables in (
        {"n": 3, "more": False, "slug": "a"},
        {"n": 5, "more": False, "slug": "a"},
        {"n": 3, "more": True, "slug": "b"},
        {"n": 3, "more": False, "slug": "c"},
    ):
        requested.append((await post(client, document, variables))["extensions"]["cost"]["requested"])
    refusals = [await post(client, document, {"n": 101, "more": False, "slug": "a"}) for _ in range(2)]

    # then: (1 + n) + (1 + 2 if more) + 1; a refused page size is refused every time
    assert requested == [5, 7, 8, 5]
    assert [error_codes(refused) for refused in refusals] == [["BAD_USER_INPUT"]] * 2


async def test_a_document_over_a_limit_or_with_an_unstorable_literal_is_refused_every_time(client: AsyncClient) -> None:
    # when
    deep = [await post(client, DEEP_ATTACK) for _ in range(2)]
    nul = [await post(client, '{ product(slug: "a\\u0000b") { id } }') for _ in range(2)]

    # then
    assert [_refusal(body)["measure"] for body in deep] == ["depth", "depth"]
    assert [error_codes(body) for body in nul] == [["BAD_USER_INPUT"]] * 2


async def test_one_text_is_validated_per_schema_and_rules_and_its_errors_kept(settings: Settings) -> None:
    # given: the same text sent to an app that allows introspection and to one that refuses it
    text = "{ __schema { queryType { name } } }"
    invalid = "{ products { nope } }"
    apps = [create_app(settings.model_copy(update={"introspection": allowed})) for allowed in (True, False)]
    async with LifespanManager(apps[0]), LifespanManager(apps[1]):
        clients = [AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") for app in apps]
        # when: in turns, twice each
        answers = [await post(clients[index], text) for index in (0, 1, 1, 0)]
        refusals = [await post(clients[0], invalid) for _ in range(2)]
        for client in clients:
            await client.aclose()

    # then
    assert ["errors" in answer for answer in answers] == [False, True, True, False]
    assert answers[0]["data"] == answers[3]["data"] == {"__schema": {"queryType": {"name": "Query"}}}
    assert [[error["message"] for error in refused["errors"]] for refused in refusals] == [
        ["Cannot query field 'nope' on type 'ProductConnection'. Did you mean 'nodes'?"]
    ] * 2
