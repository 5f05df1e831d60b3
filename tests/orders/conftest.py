"""Helpers shared by the order tests."""

from typing import Any

from httpx import AsyncClient

from domains.common.ids import encode_global_id
from tests.auth import Caller
from tests.graphql import post

ORDER_PLACE = """
mutation ($input: OrderPlaceInput!) {
  orderPlace(input: $input) {
    order { id number status total { amount currency } items { quantity unitPrice { amount } lineTotal { amount } } }
    userErrors { field code message }
  }
}
"""
ORDER_CANCEL = """
mutation ($id: ID!) {
  orderCancel(input: {orderId: $id}) { order { id status } userErrors { field code } }
}
"""
ORDER_STATUS_UPDATE = """
mutation ($id: ID!, $status: OrderStatus!) {
  orderStatusUpdate(input: {orderId: $id, status: $status}) { order { id status } userErrors { field code } }
}
"""


def lines(*pairs: tuple[int, int]) -> list[dict[str, Any]]:
    """Order lines for (product pk, quantity) pairs."""
    return [{"productId": encode_global_id("Product", pk), "quantity": quantity} for pk, quantity in pairs]


async def place(
    client: AsyncClient, caller: Caller, items: list[dict[str, Any]], key: str | None = None
) -> dict[str, Any]:
    """Send orderPlace; return the whole response body."""
    variables = {"input": {"items": items, "idempotencyKey": key}}
    return await post(client, ORDER_PLACE, variables, caller.headers)
