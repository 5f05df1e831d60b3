from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from domains.products import repository as products_repository
from tests.factories import create_product
from tests.graphql import error_codes, post

PRODUCTS_WITH_COUNT = "query { products(first: 5) { totalCount edges { node { name } } } }"


async def _explode(*_: Any, **__: Any) -> int:
    msg = "connection string postgresql://secret@db/internal is broken"
    raise RuntimeError(msg)


async def test_unexpected_error_is_masked_with_request_id(
    client: AsyncClient, db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    await create_product(db_session)
    await db_session.commit()
    monkeypatch.setattr(products_repository, "count_products", _explode)

    # when
    response = await client.post("/graphql", json={"query": PRODUCTS_WITH_COUNT}, headers={"X-Request-ID": "abc-123"})

    # then
    body = response.json()
    assert response.headers["x-request-id"] == "abc-123"
    assert body["errors"] == [
        {
            "message": "Internal server error",
            "locations": [{"line": 1, "column": 30}],
            "path": ["products", "totalCount"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "abc-123"},
        }
    ]
    assert "secret" not in response.text
    assert "RuntimeError" not in response.text


async def test_a_request_id_is_generated_when_the_incoming_one_is_not_sane(client: AsyncClient) -> None:
    # when
    response = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})

    # then
    generated = response.headers["x-request-id"]
    assert generated != "bad id with spaces"
    assert len(generated) == 32


async def test_invalid_document_is_graphql_validation_failed(client: AsyncClient) -> None:
    # when
    body = await post(client, "query { products { edges { node { noSuchField } } } }")

    # then
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert body["errors"][0]["extensions"]["requestId"]


async def test_syntax_error_is_graphql_validation_failed(client: AsyncClient) -> None:
    # when
    body = await post(client, "query { products( }")

    # then
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_variable_of_the_wrong_type_is_bad_user_input(client: AsyncClient) -> None:
    # when
    body = await post(client, "query ($n: Int) { products(first: $n) { totalCount } }", {"n": "many"})

    # then
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_failing_resolvers_leave_no_connection_checked_out(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the page query runs, then the count fails midway through the request
    await create_product(db_session)
    await db_session.commit()
    pool = app.state.engine.pool
    baseline = pool.checkedout()
    monkeypatch.setattr(products_repository, "count_products", _explode)

    # when
    bodies = []
    for _ in range(200):
        bodies.append(await post(client, PRODUCTS_WITH_COUNT))

    # then
    assert all(error_codes(body) == ["INTERNAL_SERVER_ERROR"] for body in bodies)
    assert pool.checkedout() == baseline
