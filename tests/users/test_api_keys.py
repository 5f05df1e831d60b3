"""apiKeyCreate, apiKeyRevoke and the apiKeys query."""

from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.base import utcnow
from domains.common.ids import encode_global_id
from domains.common.principal import Role
from tests import factories
from tests.auth import Caller, api_key, bearer
from tests.graphql import error_codes, gql, post

API_KEY_CREATE = """
mutation ($input: ApiKeyCreateInput!) {
  apiKeyCreate(input: $input) {
    secret apiKey { name prefix roles expiresAt revokedAt lastUsedAt } userErrors { field code }
  }
}
"""
API_KEY_REVOKE = """
mutation ($id: ID!) { apiKeyRevoke(input: {apiKeyId: $id}) { apiKey { revokedAt } userErrors { field code } } }
"""
API_KEYS = """
query ($first: Int, $after: String) {
  apiKeys(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { name } }
}
"""


async def _create(client: AsyncClient, caller: Caller, **fields: Any) -> dict[str, Any]:
    data = await gql(client, API_KEY_CREATE, {"input": {"name": "ci"} | fields}, caller.headers)
    payload: dict[str, Any] = data["apiKeyCreate"]
    return payload


async def test_api_key_create_shows_the_secret_once_and_grants_the_roles_asked(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    staff = await factories.create_user(db_session, roles=("STAFF",))
    await db_session.commit()
    expires_at = (utcnow() + timedelta(days=30)).replace(microsecond=0)

    # when
    payload = await _create(client, bearer(app, staff), roles=["CUSTOMER"], expiresAt=expires_at.isoformat())
    as_key = await gql(
        client, "{ me { email } products { nodes { stock } } }", headers={"X-API-Key": payload["secret"]}
    )

    # then
    assert payload["userErrors"] == []
    assert payload["apiKey"]["roles"] == ["CUSTOMER"]
    assert payload["apiKey"]["expiresAt"].startswith(expires_at.isoformat()[:19])
    assert payload["secret"].startswith(payload["apiKey"]["prefix"] + ".")
    assert as_key["me"] == {"email": staff.email}


async def test_api_key_create_refuses_roles_the_owner_lacks_a_past_expiry_and_a_blank_name(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    customer = await factories.create_user(db_session)
    await db_session.commit()

    # when
    payload = await _create(
        client,
        bearer(app, customer),
        name=" ",
        roles=["CUSTOMER", "STAFF"],
        expiresAt=(utcnow() - timedelta(minutes=1)).isoformat(),
    )
    too_long = await _create(client, bearer(app, customer), name="n" * 121)

    # then
    assert (payload["apiKey"], payload["secret"]) == (None, None)
    assert payload["userErrors"] == [
        {"field": ["input", "name"], "code": "REQUIRED"},
        {"field": ["input", "roles", "1"], "code": "ROLE_NOT_HELD"},
        {"field": ["input", "expiresAt"], "code": "INVALID"},
    ]
    assert too_long["userErrors"] == [{"field": ["input", "name"], "code": "TOO_LONG"}]


async def test_an_api_key_cannot_create_api_keys(client: AsyncClient, db_session: AsyncSession) -> None:
    # given: an admin's key that expires in an hour
    admin = await factories.create_user(db_session, roles=("ADMIN",))
    _, key = await api_key(db_session, admin, roles=(Role.ADMIN,), expires_at=utcnow() + timedelta(hours=1))
    await db_session.commit()

    # when: it tries to mint a key that never expires
    body = await post(client, API_KEY_CREATE, {"input": {"name": "forever"}}, key.headers)

    # then
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"] is None


async def test_api_key_revoke_stops_the_key_and_is_idempotent(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    owner = await factories.create_user(db_session)
    key, caller = await api_key(db_session, owner, roles=(Role.CUSTOMER,))
    await db_session.commit()
    key_id = encode_global_id("ApiKey", key.id)

    # when
    first = (await gql(client, API_KEY_REVOKE, {"id": key_id}, bearer(app, owner).headers))["apiKeyRevoke"]
    second = (await gql(client, API_KEY_REVOKE, {"id": key_id}, bearer(app, owner).headers))["apiKeyRevoke"]
    used = await post(client, "{ me { id } }", headers=caller.headers)

    # then
    assert first["userErrors"] == []
    assert first["apiKey"]["revokedAt"] is not None
    assert second["apiKey"]["revokedAt"] == first["apiKey"]["revokedAt"]
    assert error_codes(used) == ["UNAUTHENTICATED"]


async def test_api_key_revoke_answers_not_found_for_someone_elses_key_and_refuses_malformed_ids(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    owner = await factories.create_user(db_session)
    stranger = await factories.create_user(db_session)
    key, _ = await api_key(db_session, owner, roles=(Role.CUSTOMER,))
    await db_session.commit()

    # when
    foreign = await gql(
        client, API_KEY_REVOKE, {"id": encode_global_id("ApiKey", key.id)}, bearer(app, stranger).headers
    )
    malformed = await post(client, API_KEY_REVOKE, {"id": "nonsense"}, bearer(app, stranger).headers)

    # then
    assert foreign["apiKeyRevoke"] == {
        "apiKey": None,
        "userErrors": [{"field": ["input", "apiKeyId"], "code": "NOT_FOUND"}],
    }
    assert error_codes(malformed) == ["BAD_USER_INPUT"]


async def test_api_keys_pages_through_own_keys_newest_first(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: three keys of one user, one of another
    owner = await factories.create_user(db_session)
    other = await factories.create_user(db_session)
    for _ in range(3):
        await api_key(db_session, owner, roles=(Role.CUSTOMER,))
    await api_key(db_session, other, roles=(Role.CUSTOMER,))
    await db_session.commit()
    headers = bearer(app, owner).headers

    # when
    first = (await gql(client, API_KEYS, {"first": 2}, headers))["apiKeys"]
    rest = (await gql(client, API_KEYS, {"first": 2, "after": first["pageInfo"]["endCursor"]}, headers))["apiKeys"]

    # then
    assert first["totalCount"] == 3
    assert (len(first["nodes"]), first["pageInfo"]["hasNextPage"]) == (2, True)
    assert (len(rest["nodes"]), rest["pageInfo"]["hasNextPage"]) == (1, False)
