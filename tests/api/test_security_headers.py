"""Security headers on every HTTP answer; the GraphiQL page allows scripts from this server only."""

import re
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

API_CSP = "default-src 'none'; frame-ancestors 'none'"
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def _assert_security_headers(headers: Any, csp: str = API_CSP) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert headers["content-security-policy"] == csp


async def test_every_kind_of_answer_carries_the_security_headers(app: FastAPI, client: AsyncClient) -> None:
    # given: a route that fails, for the exception middleware's 500
    async def broken() -> None:
        msg = "boom"
        raise RuntimeError(msg)

    app.add_api_route("/broken", broken)

    # when
    answers = [
        await client.post("/graphql", json={"query": "{ __typename }"}),
        await client.post("/graphql", content="{", headers={"Content-Type": "application/json"}),
        await client.get("/nowhere"),
        await client.get("/health"),
        await client.get("/metrics"),
        await client.get("/broken"),
    ]

    # then
    assert [response.status_code for response in answers] == [200, 400, 404, 200, 200, 500]
    for response in answers:
        _assert_security_headers(response.headers)


async def test_the_graphiql_page_allows_no_inline_script_at_all(client: AsyncClient) -> None:
    # when
    page = await client.get("/graphql", headers={"Accept": "text/html"})

    # then: scripts from this server only, no hash and no 'unsafe-inline'
    policy = dict(directive.split(" ", 1) for directive in page.headers["content-security-policy"].split("; "))
    assert policy["script-src"] == "'self'"
    assert "sha256-" not in page.headers["content-security-policy"]
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    # and the page has none to run: each script element loads a file or holds data the browser never runs
    scripts = SCRIPT_TAG.findall(page.text)
    assert len(scripts) >= 5
    assert all(" src=" in attributes or 'type="application/json"' in attributes for attributes in scripts)
    _assert_security_headers(page.headers, csp=page.headers["content-security-policy"])
