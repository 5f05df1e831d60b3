"""A mutation payload's nested fields show its own write, even when an earlier field of the request cached the rows.

Root mutation fields run one after the other, and the request's loaders live as long as the request:
each document below first makes the loaders cache a row, then changes it, then reads it back.
"""

from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from tests import factories
from tests.auth import Account
from tests.graphql import gql
from tests.orders.conftest import lines, place

STOCK_ADJUST_TWICE = """
mutation ($id: ID!) {
  added: productStockAdjust(input: {productId: $id, delta: 5}) {
    product { stock inStock name category { name } rating { average count } }
  }
  removed: productStockAdjust(input: {productId: $id, delta: -3}) { product { stock } }
  emptied: productStockAdjust(input: {productId: $id, delta: -12}) { product { stock inStock } }
}
"""
REVIEW_AFTER_A_READ = """
mutation ($id: ID!) {
  read: productStockAdjust(input: {productId: $id, delta: 1}) { product { rating { average count } } }
  reviewed: reviewCreate(input: {productId: $id, rating: 4}) { review { product { rating { average count } } } }
}
"""
RENAME_AFTER_A_READ = """
mutation ($id: ID!) {
  read: productStockAdjust(input: {productId: $id, delta: 1}) { product { name } }
  renamed: productUpdate(input: {productId: $id, name: "Gyokuro"}) { product { name } }
}
"""
CATEGORY_MOVES = """
mutation ($tea: ID!, $coffee: ID!, $sencha: ID!) {
  teaBefore: categoryUpdate(input: {categoryId: $tea, description: "Leaves."}) { category { children { name } } }
  coffeeBefore: categoryUpdate(input: {categoryId: $coffee, description: "Beans."}) {
    category { name children { name } }
  }
  moved: categoryUpdate(input: {categoryId: $sencha, parentId: $coffee}) {
    category { name parent { name children { name } } }
  }
  teaAfter: categoryUpdate(input: {categoryId: $tea, description: "Only leaves."}) { category { children { name } } }
  renamed: categoryUpdate(input: {categoryId: $coffee, name: "Green"}) { category { name } }
  senchaAfter: categoryUpdate(input: {categoryId: $sencha, description: "Steamed."}) {
    category { parent { name } }
  }
}
"""
CANCEL_AFTER_A_READ = """
mutation ($product: ID!, $order: ID!) {
  read: productStockAdjust(input: {productId: $product, delta: 1}) { product { stock } }
  cancelled: orderCancel(input: {orderId: $order}) { order { status items { quantity product { stock } } } }
}
"""
PLACE_AFTER_A_READ = """
mutation ($product: ID!, $items: [OrderLineInput!]!) {
  read: productStockAdjust(input: {productId: $product, delta: 1}) { product { stock } }
  placed: orderPlace(input: {items: $items}) { order { items { product { stock } } } userErrors { code } }
}
"""


def _product_id(pk: int) -> str:
    return encode_global_id("Product", pk)


def _category_id(pk: int) -> str:
    return encode_global_id("Category", pk)


async def test_each_stock_adjust_payload_shows_its_own_stock(
    client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    category = await factories.create_category(db_session, name="Tea")
    product = await factories.create_product(db_session, name="Sencha", stock=10, category=category)
    await db_session.commit()

    # when: three adjustments in one request
    data = await gql(client, STOCK_ADJUST_TWICE, {"id": _product_id(product.id)}, staff.headers)

    # then
    assert data["added"]["product"] == {
        "stock": 15,
        "inStock": True,
        "name": "Sencha",
        "category": {"name": "Tea"},
        "rating": {"average": None, "count": 0},
    }
    assert data["removed"]["product"] == {"stock": 12}
    assert data["emptied"]["product"] == {"stock": 0, "inStock": False}


async def test_a_review_payload_shows_the_rating_that_counts_it(
    client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given: a product with one 2-star review
    product = await factories.create_product(db_session)
    await factories.create_review(db_session, product=product, author=await factories.create_user(db_session), rating=2)
    await db_session.commit()

    # when: the product's rating is read, then the product is reviewed, in one request
    data = await gql(client, REVIEW_AFTER_A_READ, {"id": _product_id(product.id)}, staff.headers)

    # then
    assert data["read"]["product"]["rating"] == {"average": 2.0, "count": 1}
    assert data["reviewed"]["review"]["product"]["rating"] == {"average": 3.0, "count": 2}


async def test_a_product_update_payload_shows_the_new_name(
    client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    product = await factories.create_product(db_session, name="Sencha")
    await db_session.commit()

    # when
    data = await gql(client, RENAME_AFTER_A_READ, {"id": _product_id(product.id)}, staff.headers)

    # then
    assert (data["read"]["product"], data["renamed"]["product"]) == ({"name": "Sencha"}, {"name": "Gyokuro"})


async def test_category_payloads_show_the_tree_as_each_move_and_rename_left_it(
    client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given: Sencha under Tea; Coffee empty
    tea = await factories.create_category(db_session, name="Tea")
    coffee = await factories.create_category(db_session, name="Coffee")
    sencha = await factories.create_category(db_session, name="Sencha", parent=tea)
    await db_session.commit()
    variables = {"tea": _category_id(tea.id), "coffee": _category_id(coffee.id), "sencha": _category_id(sencha.id)}

    # when: both parents' children are read, Sencha moves to Coffee, Coffee is renamed
    data = await gql(client, CATEGORY_MOVES, variables, staff.headers)

    # then
    assert data["teaBefore"]["category"] == {"children": [{"name": "Sencha"}]}
    assert data["coffeeBefore"]["category"] == {"name": "Coffee", "children": []}
    assert data["moved"]["category"] == {
        "name": "Sencha",
        "parent": {"name": "Coffee", "children": [{"name": "Sencha"}]},
    }
    assert data["teaAfter"]["category"] == {"children": []}
    assert data["renamed"]["category"] == {"name": "Green"}
    assert data["senchaAfter"]["category"] == {"parent": {"name": "Green"}}


async def test_an_order_cancel_payload_shows_the_returned_stock(
    client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given: an order of 3 out of 10
    product = await factories.create_product(db_session, stock=10)
    await db_session.commit()
    placed = await place(client, staff, lines((product.id, 3)))
    order_id = placed["data"]["orderPlace"]["order"]["id"]
    variables = {"product": _product_id(product.id), "order": order_id}

    # when: the product's stock is read, then the order is cancelled, in one request
    data = await gql(client, CANCEL_AFTER_A_READ, variables, staff.headers)

    # then
    assert data["read"]["product"] == {"stock": 8}
    assert data["cancelled"]["order"] == {"status": "CANCELLED", "items": [{"quantity": 3, "product": {"stock": 11}}]}


async def test_an_order_place_payload_shows_the_stock_it_took(
    client: AsyncClient, db_session: AsyncSession, staff: Account
) -> None:
    # given
    product = await factories.create_product(db_session, stock=10)
    await db_session.commit()
    variables: dict[str, Any] = {"product": _product_id(product.id), "items": lines((product.id, 4))}

    # when
    data = await gql(client, PLACE_AFTER_A_READ, variables, staff.headers)

    # then
    assert data["read"]["product"] == {"stock": 11}
    assert data["placed"] == {"order": {"items": [{"product": {"stock": 7}}]}, "userErrors": []}
