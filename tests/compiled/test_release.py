"""An operation's executor, its context and what its loaders loaded are freed when the request ends.

graphql-core's executor holds its own bound methods (`async_helpers`): left as it is, that cycle kept
the whole request (context, loaders, rows, the objects made of them) alive until the cyclic collector
ran, which walked and promoted all of it. With the collector off, nothing of a finished request that
succeeded may stay behind: reference counting alone frees it, on both execution paths. (A field error
still leaves one: its exception's traceback holds the frames that raised it, as any Python exception's does.)
"""

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from graphql.execution.executor import Executor
from httpx import AsyncClient

from api.graphql import StorefrontGraphQLRouter
from domains.common.keyset import Page
from schema.context import Context
from schema.products.types import Product
from tests.compiled.support import Catalog

PAGE = (
    "{ products(first: 5) { edges { node { id name reviews(first: 2) { edges { node { id author { name } } } } } } } }"
)
# The executor, the context, objects made of rows, and the loaders' pages (their futures' values).
KINDS = (Executor, Context, Product, Page)
NODES = "query ($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on Product { name category { name } } } }"


def _alive(kind: type) -> int:
    return sum(1 for item in gc.get_objects() if isinstance(item, kind))


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "graphql-core"])
@pytest.mark.parametrize("document", [PAGE, NODES], ids=["page", "nodes"])
async def test_a_finished_request_leaves_no_cycle_behind(
    app: FastAPI, client: AsyncClient, catalog: Catalog, compiled: bool, document: str, collector_off: None
) -> None:
    app.state.settings.graphql_compiled = compiled
    before = {kind: _alive(kind) for kind in KINDS}
    ids = [Product.global_id(pk) for pk in catalog.products[:3]]
    response = await client.post("/graphql", json={"query": document, "variables": {"ids": ids}})
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    if document == PAGE:
        assert len(body["data"]["products"]["edges"]) == 5
    else:
        assert [node["id"] for node in body["data"]["nodes"]] == ids
    del response, body
    for _ in range(5):
        await asyncio.sleep(0)  # callbacks the loop still holds (a gather's, once its last value came) run first
    assert {kind: _alive(kind) for kind in KINDS} == before


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "graphql-core"])
async def test_a_compiled_query_gives_its_connection_back_before_its_answer_is_built(
    app: FastAPI, client: AsyncClient, catalog: Catalog, compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the pool's count of checked-out connections, taken as the router builds the answer
    app.state.settings.graphql_compiled = compiled
    router = StorefrontGraphQLRouter
    create_response = router.create_response
    held: list[int] = []

    def counting(self: Any, response_data: Any, sub_response: Any) -> Any:
        held.append(app.state.engine.pool.checkedout())
        return create_response(self, response_data, sub_response)

    monkeypatch.setattr(router, "create_response", counting)

    # when
    response = await client.post("/graphql", json={"query": PAGE})

    # then: the compiled path has returned it; graphql-core's holds it until the request ends
    assert len(response.json()["data"]["products"]["edges"]) == 5
    assert held == [0 if compiled else 1]
    assert app.state.engine.pool.checkedout() == 0
