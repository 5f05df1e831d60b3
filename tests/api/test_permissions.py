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
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from domains.common.principal import Role
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
        (UNAUTHENTICATED, ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED),
    ),
    "apiKeyRevoke (a customer's key)": Row(
        "mutation ($id: ID!) { apiKeyRevoke(input: {apiKeyId: $id}) { apiKey { id } } }",
        ("apiKeyRevoke", "apiKey"),
        (UNAUTHENTICATED, ALLOWED, NULL, NULL, ALLOWED, NULL),
        lambda world, caller: {"id": world.customer_key_id},
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
    product = await factories.create_product(session)
    draft = await factories.create_product(session, published=False)
    await session.commit()
    return World(
        cast=people,
        customer_key_id=encode_global_id("ApiKey", key.id),
        product_id=encode_global_id("Product", product.id),
        draft_id=encode_global_id("Product", draft.id),
        draft_slug=draft.slug,
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
