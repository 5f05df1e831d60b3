"""Count the SQL statements one request of each operation costs, with the real app in-process."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import event

from api.app import create_app
from api.settings import Settings
from bench.operations import PRODUCT_BY_ID_DOCUMENT, Operation, global_id, top_products_document


class StatementCountError(RuntimeError):
    """The in-process app did not answer an operation cleanly."""


@dataclass(frozen=True, slots=True)
class StatementCounts:
    """Statements sent through SQLAlchemy (before_cursor_execute) per request."""

    top_products: int
    top_products_first_10: int
    product_by_id: int
    statements: dict[str, list[str]]  # the statements of each request, first line only

    @property
    def constant_in_page_size(self) -> bool:
        return self.top_products == self.top_products_first_10


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def count_statements(
    database_url: str, product_pk: int, environment: dict[str, str] | None = None
) -> StatementCounts:
    """Send one request of each operation (and TopProducts at first: 10) and count the statements.

    `environment` is set while the app runs: the server variant's settings (GRAPHQL_COMPILED).
    """
    with _environment(environment or {}):
        return await _count(database_url, product_pk)


async def _count(database_url: str, product_pk: int) -> StatementCounts:
    app = create_app(Settings(database_url=database_url, log_level="WARNING", _env_file=None))
    seen: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split())[:160])

    requests = {
        "TopProducts": Operation("TopProducts", top_products_document(50)).body(),
        "TopProducts(first: 10)": Operation("TopProducts", top_products_document(10)).body(),
        "ProductById": Operation("ProductById", PRODUCT_BY_ID_DOCUMENT).body({"id": global_id("Product", product_pk)}),
    }
    statements: dict[str, list[str]] = {}
    async with LifespanManager(app):
        event.listen(app.state.engine.sync_engine, "before_cursor_execute", on_execute)
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://bench") as client:
            for label, body in requests.items():
                seen.clear()
                response = await client.post("/graphql", content=body, headers={"content-type": "application/json"})
                payload = orjson.loads(response.content)
                if response.status_code != 200 or payload.get("errors") or not payload.get("data"):
                    raise StatementCountError(
                        f"{label} failed in-process: {response.status_code} {response.text[:500]}"
                    )
                statements[label] = list(seen)
    return StatementCounts(
        top_products=len(statements["TopProducts"]),
        top_products_first_10=len(statements["TopProducts(first: 10)"]),
        product_by_id=len(statements["ProductById"]),
        statements=statements,
    )
