"""The permission matrix of SPEC §3, as data: one row per protected operation or field.

Each row names a document, where its answer lies in `data`, and what each principal gets:
ALLOWED (a value), NULL (no value, no error), or the code of the GraphQL error. Adding an
operation to the API means adding a row here.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from domains.common.principal import Role
from domains.orders.models import OrderItem
from tests import factories
from tests.auth import Cast, api_key, cast
from tests.graphql import post

ALLOWED, NULL, UNAUTHENTICATED, FORBIDDEN = "allowed", "null", "UNAUTHENTICATED", "FORBIDDEN"
CALLERS = ("anonymous", "customer", "other_customer", "staff", "admin", "admin_key_as_staff")


@dataclass(frozen=True)
class World:
    """What the rows point at: the cast, one customer API key, and a published and an unpublished product."""

    cast: Cast
    customer_key_id: str
    product_id: str
    draft_id: str
    draft_slug: str
    order_id: str
    order_item_id: str
    orders_by_caller: dict[str, str]  # one PENDING order of the customer for each caller to act on
    unreviewed_by_caller: dict[str, str]  # a product each caller has not reviewed yet
    reviews_by_caller: dict[str, str]  # one review by the customer for each caller to delete


@dataclass(frozen=True)
class Row:
    document: str
    path: tuple[str | int, ...]
    expected: tuple[str, str, str, str, str, str]  # in the order of CALLERS
    variables: Callable[[World, str], dict[str, Any]] = lambda world, caller: {}


def _customer(world: World, caller: str) -> dict[str, Any]:
    return {"id": encode_global_id("User", world.cast.customer.id)}


MATRIX: dict[str, Row] = {
    "me": Row("{ me { email } }", ("me",), (NULL, ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED)),
    "User.email (node)": Row(
        "query ($id: ID!) { node(id: $id) { ... on User { email } } }",
        ("node", "email"),
        (NULL, ALLOWED, NULL, ALLOWED, ALLOWED, ALLOWED),
        _customer,
    ),
    "User.roles (nodes)": Row(
        "query ($id: ID!) { nodes(ids: [$id]) { ... on User { roles } } }",
        ("nodes", 0, "roles"),
        (NULL, ALLOWED, NULL, ALLOWED, ALLOWED, ALLOWED),
        _customer,
    ),
    "users": Row(
        "{ users { totalCount } }", ("users",), (UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, FORBIDDEN, ALLOWED, FORBIDDEN)
    ),
    "apiKeys (own keys; admin all)": Row(
        "{ apiKeys { nodes { name } } }",
        ("apiKeys", "nodes", 0),
        # The customer sees their key; the admin sees every key; the admin's key (not admin) sees its own.
        (UNAUTHENTICATED, ALLOWED, NULL, NULL, ALLOWED, ALLOWED),
    ),
    "ApiKey (node)": Row(
        "query ($id: ID!) { node(id: $id) { ... on ApiKey { name prefix } } }",
        ("node",),
        (NULL, ALLOWED, NULL, NULL, ALLOWED, NULL),
        lambda world, caller: {"id": world.customer_key_id},
    ),
    "Product.stock": Row(
        "query ($id: ID!) { node(id: $id) { ... on Product { stock } } }",
        ("node", "stock"),
        (NULL, NULL, NULL, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"id": world.product_id},
    ),
    "unpublished product (by slug)": Row(
        "query ($slug: String!) { product(slug: $slug) { name } }",
        ("product",),
        (NULL, NULL, NULL, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"slug": world.draft_slug},
    ),
    "unpublished product (node)": Row(
        "query ($id: ID!) { node(id: $id) { id } }",
        ("node",),
        (NULL, NULL, NULL, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"id": world.draft_id},
    ),
    "accountRegister": Row(
        "mutation ($email: String!) { accountRegister(input: {email: $email, password: 'long enough pass', name: 'N'})"
        " { user { id } } }".replace("'", '"'),
        ("accountRegister", "user"),
        (ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"email": f"new-{caller}@example.com"},
    ),
    "apiKeyCreate": Row(
        'mutation { apiKeyCreate(input: {name: "ci", roles: [CUSTOMER]}) { apiKey { id } } }',
        ("apiKeyCreate", "apiKey"),
        (UNAUTHENTICATED, ALLOWED, ALLOWED, ALLOWED, ALLOWED, FORBIDDEN),
    ),
    "apiKeyRevoke (a customer's key)": Row(
        "mutation ($id: ID!) { apiKeyRevoke(input: {apiKeyId: $id}) { apiKey { id } } }",
        ("apiKeyRevoke", "apiKey"),
        (UNAUTHENTICATED, ALLOWED, NULL, NULL, ALLOWED, NULL),
        lambda world, caller: {"id": world.customer_key_id},
    ),
    "order": Row(
        "query ($id: ID!) { order(id: $id) { number } }",
        ("order",),
        (NULL, ALLOWED, NULL, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"id": world.order_id},
    ),
    "Order (node)": Row(
        "query ($id: ID!) { node(id: $id) { ... on Order { number } } }",
        ("node",),
        (NULL, ALLOWED, NULL, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"id": world.order_id},
    ),
    "OrderItem (nodes)": Row(
        "query ($id: ID!) { nodes(ids: [$id]) { ... on OrderItem { quantity } } }",
        ("nodes", 0),
        (NULL, ALLOWED, NULL, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"id": world.order_item_id},
    ),
    "orders (staff)": Row(
        "{ orders { totalCount } }",
        ("orders",),
        (UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, ALLOWED, ALLOWED, ALLOWED),
    ),
    "User.orders": Row(
        "query ($id: ID!) { node(id: $id) { ... on User { orders { totalCount } } } }",
        ("node", "orders"),
        (NULL, ALLOWED, NULL, ALLOWED, ALLOWED, ALLOWED),
        _customer,
    ),
    "orderPlace": Row(
        "mutation ($id: ID!) { orderPlace(input: {items: [{productId: $id, quantity: 1}]}) { order { id } } }",
        ("orderPlace", "order"),
        (UNAUTHENTICATED, ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"id": world.product_id},
    ),
    "orderCancel (a customer's order)": Row(
        "mutation ($id: ID!) { orderCancel(input: {orderId: $id}) { order { status } } }",
        ("orderCancel", "order"),
        (UNAUTHENTICATED, ALLOWED, NULL, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"id": world.orders_by_caller[caller]},
    ),
    "orderStatusUpdate": Row(
        "mutation ($id: ID!) { orderStatusUpdate(input: {orderId: $id, status: PAID}) { order { status } } }",
        ("orderStatusUpdate", "order"),
        (UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"id": world.orders_by_caller[caller]},
    ),
    "categoryCreate": Row(
        'mutation ($slug: String!) { categoryCreate(input: {name: "N", slug: $slug}) { category { id } } }',
        ("categoryCreate", "category"),
        (UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"slug": caller.replace("_", "-")},
    ),
    "productCreate": Row(
        "mutation ($sku: String!, $slug: String!) {"
        ' productCreate(input: {sku: $sku, name: "N", slug: $slug, price: "1.00"}) { product { id } } }',
        ("productCreate", "product"),
        (UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"sku": caller.upper().replace("_", "-"), "slug": caller.replace("_", "-")},
    ),
    "productStockAdjust": Row(
        "mutation ($id: ID!) { productStockAdjust(input: {productId: $id, delta: 1}) { product { id } } }",
        ("productStockAdjust", "product"),
        (UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"id": world.product_id},
    ),
    "reviewCreate": Row(
        "mutation ($id: ID!) { reviewCreate(input: {productId: $id, rating: 4}) { review { id } } }",
        ("reviewCreate", "review"),
        (UNAUTHENTICATED, ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"id": world.unreviewed_by_caller[caller]},
    ),
    "reviewDelete (the customer's review)": Row(
        "mutation ($id: ID!) { reviewDelete(input: {reviewId: $id}) { deletedReviewId } }",
        ("reviewDelete", "deletedReviewId"),
        (UNAUTHENTICATED, ALLOWED, FORBIDDEN, ALLOWED, ALLOWED, ALLOWED),
        lambda world, caller: {"id": world.reviews_by_caller[caller]},
    ),
    "userRolesSet": Row(
        "mutation ($id: ID!) { userRolesSet(input: {userId: $id, roles: [CUSTOMER]}) { user { roles } } }",
        ("userRolesSet", "user"),
        (UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, FORBIDDEN, ALLOWED, FORBIDDEN),
        lambda world, caller: {"id": encode_global_id("User", world.cast.other_customer.id)},
    ),
}


async def _world(app: FastAPI, session: AsyncSession) -> World:
    people = await cast(app, session)
    key, _ = await api_key(session, people.customer, roles=(Role.CUSTOMER,))
    product = await factories.create_product(session, stock=50)
    draft = await factories.create_product(session, published=False)
    order = await factories.create_order(session, customer=people.customer, product=product)
    item = (await session.execute(select(OrderItem.id).where(OrderItem.order_id == order.id))).scalar_one()
    per_caller = {
        caller: encode_global_id(
            "Order", (await factories.create_order(session, customer=people.customer, product=product)).id
        )
        for caller in CALLERS
    }
    unreviewed = {
        caller: encode_global_id("Product", (await factories.create_product(session)).id) for caller in CALLERS
    }
    reviews = {}
    for caller in CALLERS:
        reviewed = await factories.create_product(session)
        review = await factories.create_review(session, product=reviewed, author=people.customer)
        reviews[caller] = encode_global_id("Review", review.id)
    await session.commit()
    return World(
        cast=people,
        customer_key_id=encode_global_id("ApiKey", key.id),
        product_id=encode_global_id("Product", product.id),
        draft_id=encode_global_id("Product", draft.id),
        draft_slug=draft.slug,
        order_id=encode_global_id("Order", order.id),
        order_item_id=encode_global_id("OrderItem", item),
        orders_by_caller=per_caller,
        unreviewed_by_caller=unreviewed,
        reviews_by_caller=reviews,
    )


def _outcome(body: dict[str, Any], path: tuple[str | int, ...]) -> str:
    if body.get("errors"):
        return str(body["errors"][0]["extensions"]["code"])
    value: Any = body["data"]
    for step in path:
        if value is None or (isinstance(step, int) and len(value) <= step):
            return NULL
        value = value[step]
    return NULL if value is None else ALLOWED


@pytest.mark.parametrize("name", MATRIX)
async def test_permission_matrix(name: str, app: FastAPI, client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    row = MATRIX[name]
    world = await _world(app, db_session)

    # when
    outcomes = {}
    for caller in CALLERS:
        body = await post(client, row.document, row.variables(world, caller), world.cast.callers[caller].headers)
        outcomes[caller] = _outcome(body, row.path)

    # then
    assert outcomes == dict(zip(CALLERS, row.expected, strict=True))
