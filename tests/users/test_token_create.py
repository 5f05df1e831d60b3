import asyncio
import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.settings import Settings
from domains.users import models as users_models
from domains.users import passwords
from tests import factories
from tests.graphql import error_codes, gql

TOKEN_CREATE = """
mutation ($email: String!, $password: String!) {
  tokenCreate(input: {email: $email, password: $password}) {
    accessToken refreshToken accessTokenExpiresAt user { email } userErrors { field code message }
  }
}
"""
PASSWORD = "a long enough password"
SLOW_CALLBACK_SECONDS = 0.05


async def _account(session: AsyncSession, *, active: bool = True) -> users_models.User:
    user = await factories.create_user(session, password=PASSWORD)
    user.is_active = active
    await session.commit()
    return user


async def _sign_in(client: AsyncClient, email: str, password: str = PASSWORD) -> Response:
    return await client.post(
        "/graphql", json={"query": TOKEN_CREATE, "variables": {"email": email, "password": password}}
    )


async def test_token_create_returns_a_working_token_pair(client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    user = await _account(db_session)

    # when: signing in with the address in another case
    payload = (await _sign_in(client, user.email.upper())).json()["data"]["tokenCreate"]
    me = await gql(client, "{ me { email } }", headers={"Authorization": f"Bearer {payload['accessToken']}"})

    # then
    assert payload["userErrors"] == []
    assert payload["user"] == {"email": user.email}
    assert payload["refreshToken"]
    assert payload["accessTokenExpiresAt"]
    assert me == {"me": {"email": user.email}}


async def test_token_create_answers_the_same_for_unknown_email_wrong_password_and_deactivated_account(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    user = await _account(db_session)
    inactive = await _account(db_session, active=False)

    # when
    answers = [
        (await _sign_in(client, "nobody@example.com")).json()["data"],
        (await _sign_in(client, user.email, "a wrong password")).json()["data"],
        (await _sign_in(client, inactive.email)).json()["data"],
    ]

    # then
    expected_error = {
        "field": None,
        "code": "INVALID_CREDENTIALS",
        "message": "The e-mail address or the password is wrong.",
    }
    refused = {
        "tokenCreate": {
            "accessToken": None,
            "refreshToken": None,
            "accessTokenExpiresAt": None,
            "user": None,
            "userErrors": [expected_error],
        }
    }
    assert answers == [refused, refused, refused]


async def test_an_unknown_account_costs_one_password_verification_too() -> None:
    # when: verifying against no hash at all, as tokenCreate does for an unknown address
    matched, rehashed = await passwords.verify_password(PASSWORD, None)

    # then: the dummy hash was made and checked, so the answer takes as long as a real check
    assert (matched, rehashed) == (False, None)
    assert passwords._dummy_hash.cache_info().currsize == 1


async def test_the_sixth_attempt_in_a_minute_for_one_ip_and_email_is_rate_limited(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    user = await _account(db_session)
    for _ in range(5):
        await _sign_in(client, user.email, "a wrong password")

    # when
    refused = await _sign_in(client, user.email.upper())
    other_address = await _sign_in(client, "someone-else@example.com")

    # then: refused even with the right password; another address from the same IP is not affected
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert error_codes(refused.json()) == ["RATE_LIMITED"]
    assert refused.json()["data"] is None
    assert other_address.status_code == 200
    assert other_address.json()["data"]["tokenCreate"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"


async def test_two_app_instances_on_one_redis_share_the_sign_in_limit(
    redis_settings: Settings, db_session: AsyncSession
) -> None:
    # given: two instances of the app, as two servers behind a load balancer would run them
    user = await _account(db_session)
    first, second = create_app(redis_settings), create_app(redis_settings)
    async with (
        LifespanManager(first),
        LifespanManager(second),
        AsyncClient(transport=ASGITransport(app=first), base_url="http://a") as one,
        AsyncClient(transport=ASGITransport(app=second), base_url="http://b") as two,
    ):
        # when: five attempts spread over both, then a sixth on each
        statuses = [(await _sign_in(client, user.email)).status_code for client in (one, two, one, two, one)]
        sixth = [(await _sign_in(client, user.email)).status_code for client in (two, one)]

    # then
    assert statuses == [200] * 5
    assert sixth == [429, 429]


def _costly_hash() -> str:
    # Stored hashes keep the parameters they were made with: these take well over 50 ms to verify.
    return PasswordHash((Argon2Hasher(time_cost=4, memory_cost=64 * 1024, parallelism=1),)).hash(PASSWORD)


@contextmanager
def _callback_durations(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Time every callback the event loop runs (a task's step is one), for as long as the block runs.

    What asyncio's debug mode reports as a slow callback, without the rest of debug mode: that
    records a traceback at every future's creation (an os.stat per frame), a stall of its own.
    """
    durations: list[float] = []
    run = asyncio.Handle._run

    def timed(handle: asyncio.Handle) -> None:
        started = time.perf_counter()
        try:
            run(handle)
        finally:
            durations.append(time.perf_counter() - started)

    with monkeypatch.context() as patch:
        patch.setattr(asyncio.Handle, "_run", timed)
        yield durations


@pytest.mark.alone
async def test_concurrent_sign_ins_never_block_the_event_loop(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: accounts with costly hashes, and an app warmed up on both paths (first-use costs are
    # not the point here)
    costly = _costly_hash()
    users = [await _account(db_session) for _ in range(4)]
    for user in users:
        user.password_hash = costly
    await db_session.commit()
    # Concurrent warm-up also opens the connections a burst needs (database, Redis) before measuring.
    warm_up = [users[0].email, users[2].email, "warm-up@example.com", "warm-up-2@example.com"] * 2
    await asyncio.gather(*(_sign_in(client, email) for email in warm_up))
    # The detector works here: one such verification run on the loop itself is a slow callback.
    with _callback_durations(monkeypatch) as probe:
        asyncio.get_running_loop().call_soon(passwords._verify, PASSWORD, costly)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    assert max(probe) > SLOW_CALLBACK_SECONDS

    # As gunicorn.conf.py does after preloading the app: the heap built so far (app, schema, test
    # session) leaves the collector's generations, else a full collection of it (over 100 ms here)
    # could fall in any callback and be taken for one.
    gc.collect()
    gc.freeze()

    # when: 20 sign-ins at once, right and wrong passwords and unknown addresses (each one argon2 check)
    attempts: list[Any] = []
    for n in range(20):
        email = users[n % 4].email if n % 2 else f"unknown{n}@example.com"
        attempts.append(_sign_in(client, email, PASSWORD if n % 4 == 1 else "a wrong password"))
    try:
        with _callback_durations(monkeypatch) as durations:
            responses = await asyncio.gather(*attempts)
    finally:
        gc.unfreeze()

    # then: no callback held the loop for 50 ms
    assert len(durations) > 100
    assert max(durations) < SLOW_CALLBACK_SECONDS
    assert [response.status_code for response in responses] == [200] * 20
    assert sum(bool(r.json()["data"]["tokenCreate"]["accessToken"]) for r in responses) == 5
    await db_session.refresh(users[1])
    assert users[1].password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), "rehashed with current parameters"
