"""GraphQL over HTTP: refusals as GraphQL errors, media types and the status codes that go with them."""

from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.graphql import GraphQLResponse
from api.http import APPLICATION_JSON, GRAPHQL_RESPONSE_JSON, negotiate_media_type
from domains.users import models as users_models

JSON = {"Content-Type": "application/json"}
WANTS_GRAPHQL_RESPONSE = {**JSON, "Accept": GRAPHQL_RESPONSE_JSON}
TYPENAME = '{"query": "{ __typename }"}'
UNKNOWN_FIELD = "{ products { edges { node { noSuchField } } } }"
VARIABLE_OF_THE_WRONG_TYPE = ("query ($n: Int) { products(first: $n) { totalCount } }", {"n": "many"})
ACCOUNT_REGISTER = (
    'mutation { accountRegister(input: {email: "new@example.com", password: "a long password 1", name: "N"}) '
    "{ userErrors { code } } }"
)


def _refusal(response: Response) -> tuple[int, str, str]:
    """The status, `extensions.code` and `requestId` of a refusal, checking it has the GraphQL error shape."""
    body = response.json()
    assert set(body) == {"errors"}
    (error,) = body["errors"]
    assert set(error) == {"message", "extensions"}
    assert error["message"]
    return response.status_code, error["extensions"]["code"], error["extensions"]["requestId"]


async def _accounts(db_session: AsyncSession) -> int:
    count: int = await db_session.scalar(select(func.count()).select_from(users_models.User)) or 0
    return count


async def test_malformed_json_is_a_bad_request_in_the_graphql_error_shape(client: AsyncClient) -> None:
    # when
    response = await client.post("/graphql", content='{"query": ', headers={**JSON, "X-Request-ID": "req-1"})

    # then
    assert _refusal(response) == (400, "BAD_REQUEST", "req-1")
    assert response.headers["content-type"] == APPLICATION_JSON


@pytest.mark.parametrize("body", ['"x"', "null", "123", "[]", '[{"query": "{ __typename }"}]', "true"])
async def test_a_json_body_that_is_not_an_object_is_a_bad_request(client: AsyncClient, body: str) -> None:
    # when
    response = await client.post("/graphql", content=body, headers={**JSON, "X-Request-ID": "req-2"})

    # then: not a 500, and batching stays off
    assert _refusal(response) == (400, "BAD_REQUEST", "req-2")


@pytest.mark.parametrize(
    "body",
    [
        {"query": 1},
        {"query": ["{ __typename }"]},
        {"query": {"text": "{ __typename }"}},
        {"query": "{ __typename }", "variables": "x"},
        {"query": "{ __typename }", "variables": []},
        {"query": "{ __typename }", "extensions": "x"},
        {"query": "{ __typename }", "operationName": 1},
        {"variables": {}},
        {"qeury": "{ __typename }"},
    ],
)
async def test_a_request_of_the_wrong_shape_or_without_query_is_a_bad_request(
    client: AsyncClient, body: dict[str, Any]
) -> None:
    # when
    response = await client.post("/graphql", json=body, headers={"X-Request-ID": "req-3"})

    # then
    assert _refusal(response) == (400, "BAD_REQUEST", "req-3")


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"variables": "{"}, 400),
        ({"variables": "[1]"}, 400),
        ({"extensions": "nope"}, 400),
        ({"variables": "", "operationName": "", "extensions": ""}, 200),
        ({"variables": '{"n": 1}'}, 200),
    ],
)
async def test_get_parameters_are_checked_like_a_post_body(
    client: AsyncClient, params: dict[str, str], status: int
) -> None:
    # when
    response = await client.get(
        "/graphql",
        params={"query": "query ($n: Int) { products(first: $n) { totalCount } }", **params},
        headers={"X-Requested-With": "XMLHttpRequest"},
    )

    # then: empty parameters count as absent
    assert response.status_code == status
    if status == 200:
        assert response.json()["data"] == {"products": {"totalCount": 0}}
    else:
        assert _refusal(response)[:2] == (400, "BAD_REQUEST")


async def test_a_body_that_is_not_utf8_is_a_bad_request(client: AsyncClient) -> None:
    # when
    response = await client.post("/graphql", content=b'{"query": "\xff\xfe"}', headers=JSON)

    # then
    assert _refusal(response)[:2] == (400, "BAD_REQUEST")


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_other_methods_are_method_not_allowed(client: AsyncClient, method: str) -> None:
    # when
    response = await client.request(method, "/graphql", content=TYPENAME, headers={**JSON, "X-Request-ID": "req-4"})

    # then
    assert _refusal(response) == (405, "METHOD_NOT_ALLOWED", "req-4")
    assert response.headers["cache-control"] == "private, no-store"  # a 405 is otherwise cacheable by heuristics
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "POST"}


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
async def test_a_post_that_is_not_json_is_unsupported_media_type(client: AsyncClient, content_type: str | None) -> None:
    # given: the CSRF header, so that the content type is what decides
    headers = {"X-Requested-With": "XMLHttpRequest", "X-Request-ID": "req-5"}
    if content_type is not None:
        headers["Content-Type"] = content_type

    # when
    response = await client.post("/graphql", content=TYPENAME, headers=headers)

    # then
    assert _refusal(response) == (415, "UNSUPPORTED_MEDIA_TYPE", "req-5")


async def test_json_in_another_charset_is_unsupported_but_utf8_is_accepted(client: AsyncClient) -> None:
    # when
    latin, utf8 = [
        await client.post("/graphql", content=TYPENAME, headers={"Content-Type": f"{APPLICATION_JSON}; charset={name}"})
        for name in ("latin-1", "UTF-8")
    ]

    # then
    assert _refusal(latin)[:2] == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert utf8.json()["data"] == {"__typename": "Query"}


async def test_an_unknown_route_is_a_not_found_graphql_error(client: AsyncClient) -> None:
    # when
    response = await client.get("/api/v1/products", headers={"X-Request-ID": "req-6"})

    # then
    assert _refusal(response) == (404, "NOT_FOUND", "req-6")


async def test_a_mutation_over_get_is_method_not_allowed_and_changes_nothing(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # when: even with the CSRF header
    response = await client.get(
        "/graphql",
        params={"query": ACCOUNT_REGISTER},
        headers={"Apollo-Require-Preflight": "true", "X-Request-ID": "req-7"},
    )

    # then
    assert _refusal(response) == (405, "METHOD_NOT_ALLOWED", "req-7")
    assert response.headers["allow"] == "POST"
    assert await _accounts(db_session) == 0


async def test_graphql_response_json_is_answered_in_kind(client: AsyncClient) -> None:
    # when
    response = await client.post("/graphql", content=TYPENAME, headers=WANTS_GRAPHQL_RESPONSE)

    # then
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    assert response.json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{ products(", None, "GRAPHQL_VALIDATION_FAILED"),
        (UNKNOWN_FIELD, None, "GRAPHQL_VALIDATION_FAILED"),
        (*VARIABLE_OF_THE_WRONG_TYPE, "BAD_USER_INPUT"),
    ],
    ids=["syntax error", "validation error", "variable coercion"],
)
@pytest.mark.parametrize(
    ("accept", "status", "media_type"),
    [
        (GRAPHQL_RESPONSE_JSON, 400, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, {APPLICATION_JSON};q=0.9", 400, GRAPHQL_RESPONSE_JSON),
        (APPLICATION_JSON, 200, APPLICATION_JSON),
        ("*/*", 200, APPLICATION_JSON),
        (None, 200, APPLICATION_JSON),
    ],
)
async def test_a_request_error_has_no_data_and_is_a_400_only_for_graphql_response_json(
    client: AsyncClient,
    query: str,
    variables: dict[str, Any] | None,
    code: str,
    accept: str | None,
    status: int,
    media_type: str,
) -> None:
    # given
    headers = {"Accept": accept} if accept else {}

    # when
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)

    # then
    body = response.json()
    assert (response.status_code, response.headers["content-type"]) == (status, media_type)
    assert "data" not in body
    assert [error["extensions"]["code"] for error in body["errors"]] == [code]


async def test_a_field_error_keeps_data_and_status_200_with_either_media_type(client: AsyncClient) -> None:
    # given: execution begins, then a resolver refuses (a cursor it cannot read)
    query = '{ products(after: "garbage!!") { totalCount } }'

    # when
    answers = [
        await client.post("/graphql", json={"query": query}, headers={"Accept": accept})
        for accept in (GRAPHQL_RESPONSE_JSON, APPLICATION_JSON)
    ]

    # then
    for response in answers:
        assert response.status_code == 200
        assert response.json()["data"] is None
        assert [error["extensions"]["code"] for error in response.json()["errors"]] == ["BAD_USER_INPUT"]


async def test_an_untrusted_credential_is_401_for_graphql_response_json_and_never_carries_data(
    client: AsyncClient,
) -> None:
    # given
    forged = {"Authorization": "Bearer not-a-jwt"}
    me = {"query": "{ me { id } }"}

    # when
    strict = await client.post("/graphql", json=me, headers={**forged, "Accept": GRAPHQL_RESPONSE_JSON})
    legacy = await client.post("/graphql", json=me, headers=forged)

    # then
    assert (strict.status_code, strict.headers["www-authenticate"]) == (401, "Bearer")
    assert legacy.status_code == 200
    for response in (strict, legacy):
        assert "data" not in response.json()
        assert [error["extensions"]["code"] for error in response.json()["errors"]] == ["UNAUTHENTICATED"]


def test_a_status_an_extension_chose_is_kept_for_a_request_error() -> None:
    # given: a request error that an extension answered with 429 (a spent budget)
    data: Any = {"errors": [{"message": "slow down", "extensions": {"code": "RATE_LIMITED"}}]}
    response = GraphQLResponse(b"{}", status_code=429, data=data)

    # when
    response.negotiate(GRAPHQL_RESPONSE_JSON)

    # then
    assert (response.status_code, response.headers["content-type"]) == (429, GRAPHQL_RESPONSE_JSON)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, APPLICATION_JSON),
        ("", APPLICATION_JSON),
        ("*/*", APPLICATION_JSON),
        ("application/*", APPLICATION_JSON),
        ("text/html", APPLICATION_JSON),
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{APPLICATION_JSON}, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=0.5, {APPLICATION_JSON}", APPLICATION_JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=0", APPLICATION_JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=nonsense, */*", APPLICATION_JSON),
        (f"Application/GraphQL-Response+JSON; charset=utf-8, {APPLICATION_JSON};q=0.9", GRAPHQL_RESPONSE_JSON),
    ],
)
def test_the_media_type_is_graphql_response_json_only_when_named_first(accept: str | None, expected: str) -> None:
    # when / then
    assert negotiate_media_type(accept) == expected
