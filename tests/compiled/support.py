"""Run one document through both execution paths of the same app and compare the answers."""

from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI
from httpx import AsyncClient

from api.settings import Settings
from schema.compiled.extension import COMPILED, EXECUTION_PATH
from tests.auth import Caller


@dataclass(frozen=True)
class Catalog:
    """What the `catalog` fixture (tests/compiled/conftest.py) stored: row ids and a product slug."""

    products: list[int]
    hidden: int
    categories: list[int]
    reviews: list[int]
    users: list[int]
    slug: str


@dataclass(frozen=True)
class Case:
    name: str
    document: str
    variables: dict[str, Any] = field(default_factory=dict)
    operation_name: str | None = None


async def answer(client: AsyncClient, caller: Caller, case: Case) -> tuple[int, bytes]:
    """The status and body of one request, without the figures two requests never share.

    Those are each error's `requestId` and the cost budget's `remaining` and `resetAt`.
    """
    payload: dict[str, Any] = {"query": case.document, "variables": case.variables}
    if case.operation_name:
        payload["operationName"] = case.operation_name
    response = await client.post("/graphql", json=payload, headers=caller.headers)
    body = orjson.loads(response.content)
    for error in body.get("errors") or []:
        error.get("extensions", {}).pop("requestId", None)
    cost = (body.get("extensions") or {}).get("cost")
    if cost:
        cost["remaining"] = cost["resetAt"] = None
    return response.status_code, orjson.dumps(body)


def served(path: str) -> float:
    """How many operations this path served so far (the `graphql_execution_path_total` counter)."""
    value: float = EXECUTION_PATH.labels(path)._value.get()
    return value


async def both_paths(app: FastAPI, client: AsyncClient, caller: Caller, case: Case) -> tuple[Any, Any, bool]:
    """Answer the case with the compiled path off, then on; and whether the compiled path served the second."""
    settings: Settings = app.state.settings
    settings.graphql_compiled = False
    before = served(COMPILED)
    reference = await answer(client, caller, case)
    assert served(COMPILED) == before, case.name  # the kill switch: graphql-core only
    settings.graphql_compiled = True
    compiled = await answer(client, caller, case)
    return reference, compiled, served(COMPILED) == before + 1
