"""Helpers to send GraphQL documents to the app under test."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import event


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


@contextmanager
def count_statements(app: FastAPI) -> Iterator[list[str]]:
    """Collect every SQL statement the app's engine sends while the block runs."""
    statements: list[str] = []

    def _record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", _record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", _record)
