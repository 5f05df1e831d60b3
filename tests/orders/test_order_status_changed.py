"""`orderStatusChanged` with the reference graphql-ws client against a real server: who may follow an
order, what a subscriber receives after a committed change, and when a subscription ends."""

from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import build_token_issuer
from api.settings import Settings
from domains.common.base import utcnow
from domains.common.ids import encode_global_id
from domains.common.principal import Role
from tests import factories
from tests.auth import Account
from tests.servers import Uvicorn
from tests.ws_reference import Line, reference_client, wait_for_metric

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
SUBSCRIPTIONS = "graphql_subscriptions_active"


def _socket(server: Uvicorn) -> str:
    return server.url.replace("http://", "ws://") + "/graphql"


def _bearer(account: Account) -> dict[str, str]:
    return {"authorization": account.headers["Authorization"]}


async def _move(server: Uvicorn, staff: Account, order_id: str, status: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.url}/graphql",
            json={"query": ORDER_STATUS_UPDATE, "variables": {"orderId": order_id, "status": status}},
            headers=staff.headers,
        )
    assert response.json()["data"]["orderStatusUpdate"]["userErrors"] == []


def _follow(operation_id: str, order_id: str, take: int | None = None) -> dict[str, object]:
    operation: dict[str, object] = {
        "id": operation_id,
        "query": ORDER_STATUS_CHANGED,
        "variables": {"orderId": order_id},
    }
    return operation if take is None else {**operation, "take": take}


async def _order_of(session: AsyncSession, account: Account) -> str:
    product = await factories.create_product(session, stock=5)
    order = await factories.create_order(session, customer=account.user, product=product)
    await session.commit()
    return encode_global_id("Order", order.id)


async def test_the_customer_receives_each_committed_change_of_their_order(
    live_server: Uvicorn, db_session: AsyncSession, customer: Account, staff: Account
) -> None:
    # given: the customer follows their order
    order_id = await _order_of(db_session, customer)
    async with reference_client(_socket(live_server), [_follow("mine", order_id, take=2)], _bearer(customer)) as client:
        await wait_for_metric(live_server.url, SUBSCRIPTIONS, 1)

        # when: staff move it along over HTTP
        await _move(live_server, staff, order_id, "PAID")
        await _move(live_server, staff, order_id, "SHIPPED")
        await client.until(lambda lines: len([line for line in lines if line.get("event") == "next"]) == 2)

    # then: both changes, in order, each with the order as it is after that change
    changes = [line["payload"]["data"]["orderStatusChanged"] for line in client.of("mine", "next")]
    assert [(change["previousStatus"], change["status"]) for change in changes] == [
        ("PENDING", "PAID"),
        ("PAID", "SHIPPED"),
    ]
    assert [change["order"] for change in changes] == [
        {"id": order_id, "status": "PAID"},
        {"id": order_id, "status": "SHIPPED"},
    ]
    await wait_for_metric(live_server.url, SUBSCRIPTIONS, 0)


async def test_following_someone_elses_order_fails_alone_while_the_socket_goes_on(
    live_server: Uvicorn, db_session: AsyncSession, customer: Account, staff: Account
) -> None:
    # given: another customer's order, and the customer's own
    other = await factories.create_user(db_session)
    product = await factories.create_product(db_session, stock=5)
    theirs = encode_global_id("Order", (await factories.create_order(db_session, customer=other, product=product)).id)
    mine = await _order_of(db_session, customer)
    operations = [_follow("theirs", theirs), _follow("mine", mine, take=1)]

    # when: one socket follows both
    async with reference_client(_socket(live_server), operations, _bearer(customer)) as client:
        await client.until(lambda lines: any(line.get("id") == "theirs" for line in lines))
        await wait_for_metric(live_server.url, SUBSCRIPTIONS, 1)
        await _move(live_server, staff, mine, "PAID")
        await client.until(lambda lines: any(line.get("id") == "mine" for line in lines))

    # then: FORBIDDEN for the other's order; the customer's own goes on and receives its change
    (refused,) = client.of("theirs")
    assert refused["event"] == "error"
    assert [error["extensions"]["code"] for error in refused["error"]] == ["FORBIDDEN"]
    (received,) = client.of("mine", "next")
    assert received["payload"]["data"]["orderStatusChanged"]["status"] == "PAID"


async def test_an_anonymous_socket_cannot_follow_an_order(
    live_server: Uvicorn, db_session: AsyncSession, customer: Account
) -> None:
    # given
    order_id = await _order_of(db_session, customer)

    # when
    async with reference_client(_socket(live_server), [_follow("anon", order_id)]) as client:
        await client.until(lambda lines: any(line.get("id") == "anon" for line in lines))

    # then
    (refused,) = client.of("anon")
    assert [error["extensions"]["code"] for error in refused["error"]] == ["UNAUTHENTICATED"]


async def test_a_subscription_ends_when_the_access_token_that_authorised_it_expires(
    live_server: Uvicorn, db_session: AsyncSession, settings: Settings, customer: Account
) -> None:
    # given: an access token with two seconds left
    order_id = await _order_of(db_session, customer)
    issuer = build_token_issuer(settings)
    issued_at = utcnow() - issuer.access_ttl + timedelta(seconds=2)
    token, expires_at = issuer.issue_access(customer.user.id, frozenset({Role.CUSTOMER}), now=issued_at)

    # when
    params = {"authorization": f"Bearer {token}"}
    async with reference_client(_socket(live_server), [_follow("mine", order_id)], params) as client:
        lines: list[Line] = await client.until(lambda lines: any(line.get("id") == "mine" for line in lines))

    # then: ended at expiry (the token's `exp`, in whole seconds), with UNAUTHENTICATED, not before
    (ended,) = [line for line in lines if line.get("id") == "mine"]
    assert utcnow() >= expires_at.replace(microsecond=0)
    assert ended["event"] in {"next", "error"}
    errors = ended["payload"]["errors"] if ended["event"] == "next" else ended["error"]
    assert [error["extensions"]["code"] for error in errors] == ["UNAUTHENTICATED"]
