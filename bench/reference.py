"""The reference endpoint: the bench's two operations in hand-written SQL over asyncpg, encoded by orjson.

It is the "Python ceiling on this machine": a bare ASGI callable, served by the same gunicorn
and uvicorn workers as the real app, that answers POST /graphql for `TopProducts` and
`ProductById` (recognised by operationName, never parsed as GraphQL) with the same JSON, byte
for byte, as the real server gives an anonymous caller. Two statements per request.

    gunicorn -c gunicorn.conf.py 'bench.reference:create_app()'   # DATABASE_URL selects the database
"""

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson

from bench.operations import (
    PRODUCT_BY_ID,
    REVIEWS_PAGE_SIZE,
    TOP_PRODUCTS,
    TOP_PRODUCTS_PAGE_SIZE,
    global_id,
    parse_global_id,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_PRODUCT_COLUMNS = """
SELECT p.id, p.name, p.price, p.currency, p.created_at, c.id AS category_id, c.name AS category_name
FROM product AS p LEFT JOIN category AS c ON c.id = p.category_id
"""
# Anonymous callers see published products only, newest first (the API's default order).
TOP_PRODUCTS_SQL = f"{_PRODUCT_COLUMNS} WHERE p.is_published ORDER BY p.created_at DESC, p.id DESC LIMIT $1"
PRODUCT_BY_ID_SQL = f"{_PRODUCT_COLUMNS} WHERE p.id = $1 AND p.is_published"
# Each product's newest reviews, with their authors, in one window-function statement.
REVIEWS_SQL = """
SELECT r.product_id, r.id, r.rating, r.body, u.id AS user_id, u.name AS user_name
FROM (
    SELECT id, product_id, user_id, rating, body,
           row_number() OVER (PARTITION BY product_id ORDER BY created_at DESC, id DESC) AS position
    FROM review
    WHERE product_id = ANY($1::integer[])
) AS r
JOIN "user" AS u ON u.id = r.user_id
WHERE r.position <= $2
ORDER BY r.product_id, r.position
"""
JSON_HEADERS = [(b"content-type", b"application/json")]


def _dsn() -> str:
    url = os.environ.get("DATABASE_URL", "")
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    if not url.startswith("postgresql://"):
        raise RuntimeError("the reference endpoint needs DATABASE_URL=postgresql://…")
    return url


async def _no_reset(_connection: Any) -> None:
    """Skip asyncpg's per-release reset round trip: the reference only reads, outside transactions."""


def _product_node(row: Any, reviews: list[dict[str, Any]]) -> dict[str, Any]:
    category_id = row["category_id"]
    return {
        "id": global_id("Product", row["id"]),
        "name": row["name"],
        "price": {"amount": str(row["price"]), "currency": row["currency"]},
        "stock": None,  # staff only; the bench is anonymous
        "createdAt": row["created_at"].isoformat(),
        "category": None
        if category_id is None
        else {"id": global_id("Category", category_id), "name": row["category_name"]},
        "reviews": {"edges": reviews},
    }


class ReferenceApp:
    """ASGI app: GET /health, and POST /graphql for the two bench operations."""

    def __init__(self) -> None:
        self._pool: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                max_size = int(os.environ.get("DB_POOL_SIZE", "20")) + int(os.environ.get("DB_MAX_OVERFLOW", "10"))
                try:
                    self._pool = await asyncpg.create_pool(_dsn(), min_size=1, max_size=max_size, reset=_no_reset)
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._pool is not None:
                    await self._pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/health" and method == "GET":
            await _respond(send, 200, b'{"status":"ok"}')
            return
        if path != "/graphql" or method != "POST":
            await _respond(send, 404, b'{"detail":"Not Found"}')
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            request = orjson.loads(body)
            operation = request.get("operationName")
            node_id = str(request["variables"]["id"]) if operation == PRODUCT_BY_ID else ""
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            await _respond(send, 400, b'{"errors":[{"message":"bad request"}]}')
            return
        data: dict[str, Any]
        if operation == TOP_PRODUCTS:
            data = {"products": {"edges": await self._top_products()}}
        elif operation == PRODUCT_BY_ID:
            data = {"node": await self._product_by_id(node_id)}
        else:
            await _respond(send, 400, orjson.dumps({"errors": [{"message": f"unknown operation {operation!r}"}]}))
            return
        await _respond(send, 200, orjson.dumps({"data": data}))

    async def _top_products(self) -> list[dict[str, Any]]:
        async with self._pool.acquire() as connection:
            products = await connection.fetch(TOP_PRODUCTS_SQL, TOP_PRODUCTS_PAGE_SIZE)
            reviews = await self._reviews(connection, [row["id"] for row in products])
        return [{"node": _product_node(row, reviews.get(row["id"], []))} for row in products]

    async def _product_by_id(self, node_id: str) -> dict[str, Any] | None:
        parsed = parse_global_id(node_id)
        if parsed is None or parsed[0] != "Product":
            return None
        async with self._pool.acquire() as connection:
            row = await connection.fetchrow(PRODUCT_BY_ID_SQL, parsed[1])
            if row is None:
                return None
            reviews = await self._reviews(connection, [row["id"]])
        return _product_node(row, reviews.get(row["id"], []))

    @staticmethod
    async def _reviews(connection: Any, product_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        by_product: dict[int, list[dict[str, Any]]] = {}
        for row in await connection.fetch(REVIEWS_SQL, product_ids, REVIEWS_PAGE_SIZE):
            by_product.setdefault(row["product_id"], []).append(
                {
                    "node": {
                        "id": global_id("Review", row["id"]),
                        "rating": row["rating"],
                        "body": row["body"],
                        "author": {"id": global_id("User", row["user_id"]), "name": row["user_name"]},
                    }
                }
            )
        return by_product


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": body})


def create_app() -> ReferenceApp:
    """Gunicorn's app factory (`bench.reference:create_app()`)."""
    return ReferenceApp()
