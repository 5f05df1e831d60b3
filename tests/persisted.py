"""Helpers to send persisted operations (APQ hashes, `documentId`) to the app under test."""

import json
from collections.abc import Mapping
from typing import Any

from httpx import AsyncClient, Response

from api.persisted import sha256_hex

PREFLIGHT = {"Apollo-Require-Preflight": "true"}  # CSRF prevention asks it of every GET


def persisted(document: str, *, version: object = 1) -> dict[str, Any]:
    """The APQ `extensions` naming a document by its hash."""
    return {"persistedQuery": {"version": version, "sha256Hash": sha256_hex(document)}}


async def post(client: AsyncClient, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    """POST a GraphQL request body to /graphql."""
    return await client.post("/graphql", json=body, headers=headers)


async def get(client: AsyncClient, params: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    """GET /graphql as a GraphQL client sends it: `variables` and `extensions` as JSON strings."""
    encoded = {key: value if isinstance(value, str) else json.dumps(value) for key, value in params.items()}
    return await client.get("/graphql", params=encoded, headers={**PREFLIGHT, **(headers or {})})


def refusal(response: Response) -> tuple[int, str]:
    """The status and `extensions.code` of an answer with one error, no `data`, and the request's id."""
    body = response.json()
    assert set(body) == {"errors"}, body
    (error,) = body["errors"]
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    return response.status_code, error["extensions"]["code"]
