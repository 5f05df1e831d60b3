"""`orderStatusChanged` with the reference graphql-ws client against a real server: who may follow an
order, what a subscriber receives after a committed change, and when a subscription ends."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import build_token_issuer
from api.settings import Settings
from domains.common.base import utcnow
from domains.common.ids import encode_global_id
from domains.common.principal import Role
from tests import factories
from tests.auth import Account
from tests.orders.subscriptions import SUBSCRIPTIONS, bearer_params, follow, move, order_of, socket_url
from tests.servers import Uvicorn
from tests.ws_reference import Line, reference_client, wait_for_metric


async def test_the_customer_receives_each_committed_change_of_their_order(
    live_server: Uvicorn, db_session: AsyncSession, customer: Account, staff: Account
) -> None:
    # given: the customer follows their order
    order_id = await order_of(db_session, customer)
    async with reference_client(
        socket_url(live_server.url), [follow("mine", order_id, take=2)], bearer_params(customer)
    ) as client:
        await wait_for_metric(live_server.url, SUBSCRIPTIONS, 1)

        # when: staff move it along over HTTP
        await move(live_server.url, staff, order_id, "PAID")
        await move(live_server.url, staff, order_id, "SHIPPED")
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
    mine = await order_of(db_session, customer)
    operations = [follow("theirs", theirs), follow("mine", mine, take=1)]

    # when: one socket follows both
    async with reference_client(socket_url(live_server.url), operations, bearer_params(customer)) as client:
        await client.until(lambda lines: any(line.get("id") == "theirs" for line in lines))
        await wait_for_metric(live_server.url, SUBSCRIPTIONS, 1)
        await move(live_server.url, staff, mine, "PAID")
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
    order_id = await order_of(db_session, customer)

    # when
    async with reference_client(socket_url(live_server.url), [follow("anon", order_id)]) as client:
        await client.until(lambda lines: any(line.get("id") == "anon" for line in lines))

    # then
    (refused,) = client.of("anon")
    assert [error["extensions"]["code"] for error in refused["error"]] == ["UNAUTHENTICATED"]


async def test_a_subscription_ends_when_the_access_token_that_authorised_it_expires(
    live_server: Uvicorn, db_session: AsyncSession, settings: Settings, customer: Account
) -> None:
    # given: an access token with four seconds left (a loaded machine takes a second or two to start the client)
    order_id = await order_of(db_session, customer)
    issuer = build_token_issuer(settings)
    issued_at = utcnow() - issuer.access_ttl + timedelta(seconds=4)
    token, expires_at = issuer.issue_access(customer.user.id, frozenset({Role.CUSTOMER}), now=issued_at)

    # when
    params = {"authorization": f"Bearer {token}"}
    async with reference_client(socket_url(live_server.url), [follow("mine", order_id)], params) as client:
        lines: list[Line] = await client.until(lambda lines: any(line.get("id") == "mine" for line in lines))

    # then: ended at expiry (the token's `exp`, in whole seconds), with UNAUTHENTICATED, not before
    (ended,) = [line for line in lines if line.get("id") == "mine"]
    assert utcnow() >= expires_at.replace(microsecond=0)
    assert ended["event"] in {"next", "error"}
    errors = ended["payload"]["errors"] if ended["event"] == "next" else ended["error"]
    assert [error["extensions"]["code"] for error in errors] == ["UNAUTHENTICATED"]
