import asyncio
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.base import utcnow
from domains.common.principal import Role
from domains.users import models as users_models
from tests import factories
from tests.graphql import gql

PASSWORD = "a long enough password"
TOKEN_CREATE = """
mutation ($email: String!) {
  tokenCreate(input: {email: $email, password: "a long enough password"}) { accessToken refreshToken }
}
"""
TOKEN_REFRESH = """
mutation ($token: String!) {
  tokenRefresh(input: {refreshToken: $token}) {
    accessToken refreshToken accessTokenExpiresAt userErrors { field code }
  }
}
"""
TOKEN_REVOKE = """
mutation ($token: String!) { tokenRevoke(input: {refreshToken: $token}) { revoked userErrors { field code } } }
"""
INVALID_TOKEN = [{"field": ["input", "refreshToken"], "code": "INVALID_TOKEN"}]


async def _signed_in(client: AsyncClient, session: AsyncSession) -> tuple[users_models.User, dict[str, str]]:
    user = await factories.create_user(session, password=PASSWORD)
    await session.commit()
    data = await gql(client, TOKEN_CREATE, {"email": user.email})
    tokens: dict[str, str] = data["tokenCreate"]
    return user, tokens


async def _refresh(client: AsyncClient, token: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await gql(client, TOKEN_REFRESH, {"token": token}))["tokenRefresh"]
    return payload


async def test_token_refresh_rotates_the_pair(client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    user, tokens = await _signed_in(client, db_session)

    # when
    rotated = await _refresh(client, tokens["refreshToken"])
    me = await gql(client, "{ me { email } }", headers={"Authorization": f"Bearer {rotated['accessToken']}"})
    again = await _refresh(client, rotated["refreshToken"])

    # then: each new refresh token works once more; the stored tokens are hashes only
    assert rotated["userErrors"] == []
    assert rotated["refreshToken"] != tokens["refreshToken"]
    assert me == {"me": {"email": user.email}}
    assert again["userErrors"] == []
    stored = (await db_session.execute(select(users_models.RefreshToken.token_hash))).scalars().all()
    assert len(stored) == 3
    assert not {tokens["refreshToken"], rotated["refreshToken"], again["refreshToken"]} & set(stored)


async def test_reusing_a_rotated_refresh_token_revokes_its_whole_family(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: a session rotated once, and a second, unrelated session of the same user
    user, tokens = await _signed_in(client, db_session)
    rotated = await _refresh(client, tokens["refreshToken"])
    other_session = (await gql(client, TOKEN_CREATE, {"email": user.email}))["tokenCreate"]

    # when: the first (already used) refresh token comes back, as a thief replaying it would
    replay = await _refresh(client, tokens["refreshToken"])
    legitimate = await _refresh(client, rotated["refreshToken"])
    unrelated = await _refresh(client, other_session["refreshToken"])

    # then: the replay and the family's live token are refused; the other session goes on
    assert (replay["accessToken"], replay["userErrors"]) == (None, INVALID_TOKEN)
    assert legitimate["userErrors"] == INVALID_TOKEN
    assert unrelated["userErrors"] == []


async def test_token_revoke_ends_the_session(client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    _, tokens = await _signed_in(client, db_session)
    rotated = await _refresh(client, tokens["refreshToken"])

    # when: signing out with any token of the session, even an old one
    revoked = (await gql(client, TOKEN_REVOKE, {"token": tokens["refreshToken"]}))["tokenRevoke"]
    after = await _refresh(client, rotated["refreshToken"])

    # then
    assert revoked == {"revoked": True, "userErrors": []}
    assert after["userErrors"] == INVALID_TOKEN


async def test_token_revoke_refuses_a_token_it_cannot_trust(client: AsyncClient) -> None:
    # when
    payload = (await gql(client, TOKEN_REVOKE, {"token": "not-a-token"}))["tokenRevoke"]

    # then
    assert payload == {"revoked": False, "userErrors": INVALID_TOKEN}


async def test_token_refresh_refuses_expired_access_deactivated_and_unknown_tokens(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    user, tokens = await _signed_in(client, db_session)
    issuer = app.state.token_issuer
    expired, _ = issuer.issue_refresh(user.id, frozenset({Role.CUSTOMER}), now=utcnow() - timedelta(days=15))
    never_stored, _ = issuer.issue_refresh(user.id, frozenset({Role.CUSTOMER}), now=utcnow())
    inactive_user, inactive_tokens = await _signed_in(client, db_session)
    await db_session.execute(
        update(users_models.User).where(users_models.User.id == inactive_user.id).values(is_active=False)
    )
    await db_session.commit()

    # when
    answers = {
        "expired": await _refresh(client, expired),
        "access token": await _refresh(client, tokens["accessToken"]),
        "never issued by a sign-in": await _refresh(client, never_stored),
        "deactivated user": await _refresh(client, inactive_tokens["refreshToken"]),
    }

    # then
    assert {name: answer["userErrors"] for name, answer in answers.items()} == dict.fromkeys(answers, INVALID_TOKEN)


async def test_concurrent_refreshes_of_one_token_rotate_it_once_and_end_the_session(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    _, tokens = await _signed_in(client, db_session)

    # when: the same refresh token presented five times at once (a replay racing its owner)
    answers = await asyncio.gather(*(_refresh(client, tokens["refreshToken"]) for _ in range(5)))

    # then: one rotation; the others count as reuse, so the family (the new token too) is revoked
    rotated = [answer for answer in answers if answer["refreshToken"]]
    assert len(rotated) == 1
    assert [answer["userErrors"] for answer in answers if not answer["refreshToken"]] == [INVALID_TOKEN] * 4
    assert (await _refresh(client, rotated[0]["refreshToken"]))["userErrors"] == INVALID_TOKEN
