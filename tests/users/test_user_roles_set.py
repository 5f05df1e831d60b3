from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from tests import factories
from tests.auth import bearer
from tests.graphql import gql

USER_ROLES_SET = """
mutation ($id: ID!, $roles: [Role!]!) {
  userRolesSet(input: {userId: $id, roles: $roles}) { user { roles } userErrors { field code } }
}
"""
USERS = """
query ($first: Int, $after: String) {
  users(first: $first, after: $after) { totalCount nodes { name } pageInfo { endCursor } }
}
"""


async def test_user_roles_set_takes_effect_for_the_users_existing_tokens(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: a customer signed in before the change
    admin = await factories.create_user(db_session, roles=("ADMIN",))
    customer = await factories.create_user(db_session)
    await db_session.commit()
    customer_headers = bearer(app, customer).headers

    # when
    payload = await gql(
        client,
        USER_ROLES_SET,
        {"id": encode_global_id("User", customer.id), "roles": ["STAFF", "STAFF"]},
        bearer(app, admin).headers,
    )
    me = await gql(client, "{ me { roles } }", headers=customer_headers)

    # then
    assert payload["userRolesSet"] == {"user": {"roles": ["STAFF"]}, "userErrors": []}
    assert me == {"me": {"roles": ["STAFF"]}}


async def test_user_roles_set_refuses_an_admin_removing_their_own_admin_role(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    admin = await factories.create_user(db_session, roles=("ADMIN",))
    await db_session.commit()

    # when
    payload = await gql(
        client,
        USER_ROLES_SET,
        {"id": encode_global_id("User", admin.id), "roles": ["STAFF"]},
        bearer(app, admin).headers,
    )
    me = await gql(client, "{ me { roles } }", headers=bearer(app, admin).headers)

    # then
    assert payload["userRolesSet"] == {
        "user": None,
        "userErrors": [{"field": ["input", "roles"], "code": "CANNOT_REMOVE_OWN_ADMIN"}],
    }
    assert me == {"me": {"roles": ["ADMIN"]}}


async def test_user_roles_set_refuses_unknown_users_and_an_empty_role_list(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    admin = await factories.create_user(db_session, roles=("ADMIN",))
    customer = await factories.create_user(db_session)
    await db_session.commit()
    headers = bearer(app, admin).headers

    # when
    unknown = await gql(
        client, USER_ROLES_SET, {"id": encode_global_id("User", customer.id + 999), "roles": ["STAFF"]}, headers
    )
    empty = await gql(client, USER_ROLES_SET, {"id": encode_global_id("User", customer.id), "roles": []}, headers)

    # then
    assert unknown["userRolesSet"]["userErrors"] == [{"field": ["input", "userId"], "code": "NOT_FOUND"}]
    assert empty["userRolesSet"]["userErrors"] == [{"field": ["input", "roles"], "code": "REQUIRED"}]


async def test_users_pages_through_every_account(app: FastAPI, client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    admin = await factories.create_user(db_session, roles=("ADMIN",))
    for _ in range(4):
        await factories.create_user(db_session)
    await db_session.commit()
    headers = bearer(app, admin).headers

    # when
    first = (await gql(client, USERS, {"first": 3}, headers))["users"]
    rest = (await gql(client, USERS, {"first": 3, "after": first["pageInfo"]["endCursor"]}, headers))["users"]

    # then
    names = [node["name"] for node in first["nodes"] + rest["nodes"]]
    assert first["totalCount"] == 5
    assert len(names) == len(set(names)) == 5
