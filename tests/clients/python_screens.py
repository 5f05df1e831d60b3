"""The storefront's screens through the generated Python client, against a live server.

Run by clients/python/.venv's interpreter (ariadne-codegen's environment, where the generated package
`storefront_client` is importable), not by the server's: tests/clients/test_python_client.py starts
it with the server's URL and the test's accounts as JSON on stdin, and reads a JSON report of what
each screen got, with the Python types of the typed results, from stdout.
"""

import asyncio
import hashlib
import json
import sys
from typing import Any

import httpx
from storefront_client import (  # type: ignore[import-not-found]  # generated into a test's tmp dir, on PYTHONPATH
    OrderDirection,
    OrderLineInput,
    OrderPlaceInput,
    ProductFilter,
    ProductOrder,
    ProductOrderField,
    ProductStockAdjustInput,
    StorefrontClient,
    TokenCreateInput,
    TokenRefreshInput,
)


def _type(value: object) -> str:
    return type(value).__name__


async def _catalog(client: Any, search: str) -> dict[str, Any]:
    order_by = ProductOrder(field=ProductOrderField.PRICE, direction=OrderDirection.ASC)
    first = await client.catalog_page(filter_=ProductFilter(search=search), order_by=order_by, first=2)
    second = await client.catalog_page(
        filter_=ProductFilter(search=search), order_by=order_by, first=2, after=first.products.page_info.end_cursor
    )
    card = first.products.nodes[0]
    return {
        "total": first.products.total_count,
        "pages": [
            [
                (n.name, str(n.price.amount), n.price.currency, n.in_stock, n.category.name if n.category else None)
                for n in page.products.nodes
            ]
            for page in (first, second)
        ],
        "has_next": [first.products.page_info.has_next_page, second.products.page_info.has_next_page],
        "ids": {n.name: n.id for page in (first, second) for n in page.products.nodes},
        "slugs": {n.name: n.slug for page in (first, second) for n in page.products.nodes},
        "types": {"result": _type(first), "card": _type(card), "amount": _type(card.price.amount)},
    }


async def _product(client: Any, slug: str) -> dict[str, Any]:
    product = (await client.product_page(slug=slug)).product
    review = product.reviews.nodes[0]
    return {
        "sku": product.sku,
        "reviews": product.reviews.total_count,
        "review": (review.author.name, review.rating, review.title),
        "rating": (product.rating.average, product.rating.count),
        "types": {"created_at": _type(review.created_at), "aware": review.created_at.tzinfo is not None},
    }


async def _sessions(client: Any, email: str, password: str) -> tuple[str, dict[str, Any]]:
    refused = (await client.sign_in(input=TokenCreateInput(email=email, password=password + "-wrong"))).token_create
    signed_in = (await client.sign_in(input=TokenCreateInput(email=email, password=password))).token_create
    refreshed = (
        await client.refresh_session(input=TokenRefreshInput(refresh_token=signed_in.refresh_token))
    ).token_refresh
    return refreshed.access_token, {
        "refused": [(e.code.value, e.field) for e in refused.user_errors] + [refused.access_token],
        "user": (signed_in.user.name, signed_in.user.email, [role.value for role in signed_in.user.roles]),
        "tokens": [bool(signed_in.access_token), bool(refreshed.access_token)],
        "rotated": refreshed.refresh_token != signed_in.refresh_token,
        "types": {"expires_at": _type(signed_in.access_token_expires_at), "role": _type(signed_in.user.roles[0])},
    }


async def _checkout(client: Any, ids: dict[str, str], config: dict[str, Any]) -> dict[str, Any]:
    cart = [OrderLineInput(product_id=ids[config["buy"]], quantity=2)]
    placed = (await client.place_order(input=OrderPlaceInput(items=cart, idempotency_key="codegen-1"))).order_place
    retried = (await client.place_order(input=OrderPlaceInput(items=cart, idempotency_key="codegen-1"))).order_place
    sold_out = [OrderLineInput(product_id=ids[config["sold_out"]], quantity=1)]
    refused = (await client.place_order(input=OrderPlaceInput(items=sold_out))).order_place
    history = (await client.order_history(first=10)).me
    order = placed.order
    return {
        "order": (order.status.value, str(order.total.amount), order.total.currency),
        "items": [
            (i.product.name, i.quantity, str(i.unit_price.amount), str(i.line_total.amount)) for i in order.items
        ],
        "retry_same_number": retried.order.number == order.number,
        "refused": ([(e.code.value, e.field) for e in refused.user_errors], refused.order),
        "history": (history.orders.total_count, [o.number == order.number for o in history.orders.nodes]),
        "types": {"status": _type(order.status), "total": _type(order.total.amount)},
    }


async def _stock(client: Any, product_id: str) -> dict[str, Any]:
    added = (
        await client.adjust_stock(input=ProductStockAdjustInput(product_id=product_id, delta=5))
    ).product_stock_adjust
    refused = (
        await client.adjust_stock(input=ProductStockAdjustInput(product_id=product_id, delta=-1000))
    ).product_stock_adjust
    return {
        "added": (added.product.sku, added.product.stock, added.product.in_stock, added.user_errors),
        "refused": ([(e.code.value, e.field) for e in refused.user_errors], refused.product),
    }


async def main(config: dict[str, Any]) -> dict[str, Any]:
    endpoint = f"{config['url']}/graphql"
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        sent.append(hashlib.sha256(json.loads(request.content)["query"].encode()).hexdigest())

    def client(token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        http = httpx.AsyncClient(headers=headers, event_hooks={"request": [record]}, timeout=30)
        return StorefrontClient(url=endpoint, http_client=http)

    report: dict[str, Any] = {}
    async with client() as anonymous:
        report["catalog"] = await _catalog(anonymous, config["search"])
        report["product"] = await _product(anonymous, report["catalog"]["slugs"][config["reviewed"]])
        access_token, report["sign_in"] = await _sessions(anonymous, config["email"], config["password"])
    async with client(access_token) as customer:
        report["checkout"] = await _checkout(customer, report["catalog"]["ids"], config)
    async with client(config["staff_token"]) as staff:
        report["stock"] = await _stock(staff, report["catalog"]["ids"][config["buy"]])
    report["sent"] = sent
    return report


if __name__ == "__main__":
    sys.stdout.write(json.dumps(asyncio.run(main(json.load(sys.stdin))), default=str))
