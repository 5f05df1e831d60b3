"""Helpers of the `orderStatusChanged` tests: documents, a staff move over HTTP, a followed order."""

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from tests import factories
from tests.auth import Account

ORDER_STATUS_CHANGED = """
subscription Follow($orderId: ID!) {
  orderStatusChanged(orderId: $orderId) { previousStatus status changedAt order { id status } }
}
"""
ORDER_STATUS_UPDATE = """
mutation Move($orderId: ID!, $status: OrderStatus!) {
  orderStatusUpdate(input: {orderId: $orderId, status: $status}) { userErrors { code } }
}
"""
STATUS_ONLY = """
subscription Statuses($orderId: ID!) { orderStatusChanged(orderId: $orderId) { previousStatus status } }
"""
SUBSCRIPTIONS = "graphql_subscriptions_active"
HTTP_SECONDS = 30.0


def socket_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/graphql"


def bearer_params(account: Account) -> dict[str, str]:
    return {"authorization": account.headers["Authorization"]}


async def move(base_url: str, staff: Account, order_id: str, status: str) -> None:
    async with httpx.AsyncClient(timeout=HTTP_SECONDS) as http:
        response = await http.post(
            f"{base_url}/graphql",
            json={"query": ORDER_STATUS_UPDATE, "variables": {"orderId": order_id, "status": status}},
            headers=staff.headers,
        )
    body = response.json()
    assert body.get("data") is not None, body
    assert body["data"]["orderStatusUpdate"]["userErrors"] == []


def follow(
    operation_id: str, order_id: str, take: int | None = None, query: str = ORDER_STATUS_CHANGED
) -> dict[str, object]:
    operation: dict[str, object] = {
        "id": operation_id,
        "query": query,
        "variables": {"orderId": order_id},
    }
    return operation if take is None else {**operation, "take": take}


async def order_of(session: AsyncSession, account: Account) -> str:
    product = await factories.create_product(session, stock=5)
    order = await factories.create_order(session, customer=account.user, product=product)
    await session.commit()
    return encode_global_id("Order", order.id)
