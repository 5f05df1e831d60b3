from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from tests import factories
from tests.auth import bearer
from tests.graphql import count_statements, gql

ORDERS = """
query ($filter: OrderFilter, $first: Int) {
  orders(filter: $filter, first: $first) {
    totalCount
    nodes { number status customer { name } items { quantity product { name } } }
  }
}
"""
MY_ORDERS = "{ me { orders(first: 10) { totalCount nodes { number items { lineTotal { amount } } } } } }"


async def _orders(session: AsyncSession, count: int) -> list[int]:
    customers = [await factories.create_user(session) for _ in range(3)]
    products = [await factories.create_product(session) for _ in range(3)]
    ids = []
    for n in range(count):
        status = "PAID" if n % 2 else "PENDING"
        await factories.create_order(session, customer=customers[n % 3], product=products[n % 3], status=status)
        ids.append(customers[n % 3].id)
    return ids


async def test_orders_filters_by_status_and_customer_without_n_plus_one(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    staff = await factories.create_user(db_session, roles=("STAFF",))
    customer_ids = await _orders(db_session, 12)
    await db_session.commit()
    headers = bearer(app, staff).headers

    # when
    with count_statements(app) as statements:
        everything = await gql(client, ORDERS, {"first": 12}, headers)
    paid = await gql(client, ORDERS, {"filter": {"status": "PAID"}}, headers)
    one_customer = await gql(
        client, ORDERS, {"filter": {"customerId": encode_global_id("User", customer_ids[0])}}, headers
    )

    # then: 12 orders with their customers, lines and products in a fixed number of statements
    assert everything["orders"]["totalCount"] == 12
    assert all(len(node["items"]) == 1 and node["items"][0]["product"] for node in everything["orders"]["nodes"])
    # the principal, the page, its count, then one batch each of lines, customers and products
    assert len(statements) == 6
    assert {node["status"] for node in paid["orders"]["nodes"]} == {"PAID"}
    assert paid["orders"]["totalCount"] == 6
    assert one_customer["orders"]["totalCount"] == 4


async def test_me_orders_lists_only_my_orders(app: FastAPI, client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    me = await factories.create_user(db_session)
    other = await factories.create_user(db_session)
    product = await factories.create_product(db_session, price="2.50")
    for _ in range(2):
        await factories.create_order(db_session, customer=me, product=product, quantity=2)
    await factories.create_order(db_session, customer=other, product=product)
    await db_session.commit()

    # when
    data = await gql(client, MY_ORDERS, headers=bearer(app, me).headers)

    # then
    orders = data["me"]["orders"]
    assert orders["totalCount"] == 2
    assert [node["items"] for node in orders["nodes"]] == [[{"lineTotal": {"amount": "5.00"}}]] * 2
