"""Security headers on every HTTP answer; the GraphiQL page allows no inline script but its own."""

import base64
import hashlib
import re
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

API_CSP = "default-src 'none'; frame-ancestors 'none'"
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


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


async def test_the_graphiql_page_allows_exactly_its_own_inline_script(client: AsyncClient) -> None:
    # when
    page = await client.get("/graphql", headers={"Accept": "text/html"})

    # then
    policy = dict(directive.split(" ", 1) for directive in page.headers["content-security-policy"].split("; "))
    (script,) = INLINE_SCRIPT.findall(page.text)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert "unsafe" not in policy["script-src"]
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    _assert_security_headers(page.headers, csp=page.headers["content-security-policy"])
