"""Helpers to send GraphQL documents to the app under test."""

from collections.abc import Mapping
from typing import Any

from httpx import AsyncClient


async def post(
    client: AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """POST a document and return the whole response body (data and errors)."""
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    body: dict[str, Any] = response.json()
    return body


async def gql(
    client: AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """POST a document and return its data, failing on any error."""
    body = await post(client, query, variables, headers)
    assert not body.get("errors"), body.get("errors")
    data: dict[str, Any] = body["data"]
    return data


def error_codes(body: dict[str, Any]) -> list[str]:
    """The `extensions.code` of every error in a response."""
    return [error["extensions"]["code"] for error in body.get("errors") or []]
