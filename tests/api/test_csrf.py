"""CSRF prevention as Apollo Server does it: what a plain HTML form or link could send is refused unrun."""

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.graphiql import content_security_policy
from domains.users import models as users_models

TYPENAME = "{ __typename }"
ACCOUNT_REGISTER = (
    'mutation { accountRegister(input: {email: "csrf@example.com", password: "a long password 1", name: "C"}) '
    "{ userErrors { code } } }"
)
PREFLIGHT_HEADERS = ["X-Requested-With", "Apollo-Require-Preflight", "X-Apollo-Operation-Name"]


async def _accounts(db_session: AsyncSession) -> int:
    count: int = await db_session.scalar(select(func.count()).select_from(users_models.User)) or 0
    return count


async def test_a_get_query_without_a_preflight_header_is_refused_naming_the_headers_to_add(client: AsyncClient) -> None:
    # when: what an <img src> or a link to the API would send
    response = await client.get("/graphql", params={"query": TYPENAME}, headers={"X-Request-ID": "csrf-1"})

    # then
    body = response.json()
    assert response.status_code == 400
    assert "data" not in body
    assert body["errors"][0]["extensions"] == {"code": "BAD_REQUEST", "requestId": "csrf-1"}
    assert all(f"'{header}'" in body["errors"][0]["message"] for header in PREFLIGHT_HEADERS)
    assert "'Content-Type: application/json'" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Requested-With": "XMLHttpRequest"},
        {"Apollo-Require-Preflight": "true"},
        {"X-Apollo-Operation-Name": "Typename"},
        {"Content-Type": "application/json"},
    ],
)
async def test_a_get_query_with_a_non_simple_header_runs(client: AsyncClient, headers: dict[str, str]) -> None:
    # when
    response = await client.get("/graphql", params={"query": TYPENAME}, headers=headers)

    # then
    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}


async def test_an_empty_preflight_header_does_not_count(client: AsyncClient) -> None:
    # when
    response = await client.get("/graphql", params={"query": TYPENAME}, headers={"X-Requested-With": ""})

    # then
    assert response.status_code == 400


FORM_CONTENT_TYPES = [
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
]


@pytest.mark.parametrize("content_type", FORM_CONTENT_TYPES)
async def test_a_form_like_post_is_refused_before_its_mutation_runs(
    client: AsyncClient, db_session: AsyncSession, content_type: str
) -> None:
    # given: the JSON body a cross-site <form enctype="text/plain"> can forge
    body = '{"query": "' + ACCOUNT_REGISTER.replace('"', '\\"') + '"}'

    # when
    response = await client.post("/graphql", content=body, headers={"Content-Type": content_type})

    # then
    assert response.status_code == 400
    assert [error["extensions"]["code"] for error in response.json()["errors"]] == ["BAD_REQUEST"]
    assert await _accounts(db_session) == 0


async def test_a_post_without_content_type_is_refused_unless_it_has_a_preflight_header(client: AsyncClient) -> None:
    # when
    bare = await client.post("/graphql", content='{"query": "{ __typename }"}')
    marked = await client.post("/graphql", content='{"query": "{ __typename }"}', headers={"X-Requested-With": "x"})

    # then: CSRF first; with the header, the missing content type is what is wrong
    assert bare.status_code == 400
    assert marked.status_code == 415


async def test_the_graphiql_page_still_opens_in_a_browser_without_any_header(client: AsyncClient) -> None:
    # when: a browser's navigation to /graphql
    response = await client.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})

    # then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == content_security_policy()
