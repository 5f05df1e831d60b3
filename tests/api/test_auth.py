"""Authentication over real HTTP: every untrustworthy credential is UNAUTHENTICATED, never anonymous."""

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import jwt
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.auth.principal import require_role
from api.settings import Settings
from domains.common.base import utcnow
from domains.common.principal import Principal, Role
from domains.users import models as users_models
from tests import factories
from tests.auth import Account, api_key, bearer
from tests.graphql import error_codes, post

ME = "{ me { id email } }"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(settings: Settings, user_id: int, **overrides: Any) -> dict[str, Any]:
    now = utcnow()
    claims = {
        "sub": str(user_id),
        "roles": ["CUSTOMER"],
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=15),
        "jti": "test",
        "type": "access",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    claims.update(overrides)
    return claims


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["sub"] = str(int(data["sub"]) + 1)
    return f"{header}.{_b64(json.dumps(data).encode())}.{signature}"


Forge = Callable[[Settings, FastAPI, users_models.User], str]


def _hs(**overrides: Any) -> Forge:
    def forge(settings: Settings, app: FastAPI, user: users_models.User) -> str:
        return jwt.encode(_claims(settings, user.id, **overrides), settings.jwt_secret.get_secret_value(), "HS256")

    return forge


HS256_FORGERIES: dict[str, Forge] = {
    "alg none": lambda s, app, user: jwt.encode(_claims(s, user.id), "", algorithm="none"),
    "expired": _hs(exp=utcnow() - timedelta(seconds=1), iat=utcnow() - timedelta(minutes=16)),
    "nbf in the future": _hs(nbf=utcnow() + timedelta(minutes=5)),
    "wrong audience": _hs(aud="another-api"),
    "wrong issuer": _hs(iss="someone-else"),
    "another secret": lambda s, app, user: jwt.encode(_claims(s, user.id), "x" * 48, "HS256"),
    "refresh token as access token": lambda s, app, user: app.state.token_issuer.issue_refresh(
        user.id, frozenset({Role.CUSTOMER}), now=utcnow()
    )[0],
    "tampered payload": lambda s, app, user: _tampered(bearer(app, user).headers["Authorization"].split()[1]),
    "garbage": lambda s, app, user: "not-a-jwt",
}


@pytest.mark.parametrize("forgery", HS256_FORGERIES.values(), ids=HS256_FORGERIES.keys())
async def test_untrustworthy_access_tokens_are_unauthenticated(
    forgery: Forge, settings: Settings, app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    user = await factories.create_user(db_session)
    await db_session.commit()
    token = forgery(settings, app, user)

    # when
    body = await post(client, ME, headers={"Authorization": f"Bearer {token}"})

    # then: refused outright before execution (no `data` entry), not answered as anonymous (`me: null`)
    assert "data" not in body
    assert error_codes(body) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer a b"},
        {"X-API-Key": ""},
        {"X-API-Key": "sfk_0000.nothing"},
        {"X-API-Key": "no-prefix-at-all"},
    ],
    ids=["basic scheme", "empty bearer", "two words", "empty api key", "unknown api key", "malformed api key"],
)
async def test_malformed_or_unknown_credentials_are_unauthenticated(
    headers: dict[str, str], client: AsyncClient
) -> None:
    # when
    body = await post(client, ME, headers=headers)

    # then
    assert (body.get("data", "absent"), error_codes(body)) == ("absent", ["UNAUTHENTICATED"])


async def test_a_valid_token_and_an_api_key_together_are_refused(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    user = await factories.create_user(db_session)
    _, key = await api_key(db_session, user, roles=(Role.CUSTOMER,))
    await db_session.commit()

    # when
    body = await post(client, ME, headers={**bearer(app, user).headers, **key.headers})

    # then
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_a_valid_token_signs_its_user_in(app: FastAPI, client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    user = await factories.create_user(db_session)
    await db_session.commit()

    # when
    body = await post(client, ME, headers=bearer(app, user).headers)

    # then
    assert body["data"] == {"me": {"id": body["data"]["me"]["id"], "email": user.email}}
    assert "errors" not in body


@pytest.mark.parametrize("change", ["deactivate", "delete"])
async def test_tokens_of_a_deactivated_or_deleted_user_stop_working_at_once(
    change: str, app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: a signed-in user whose token worked a moment ago
    user = await factories.create_user(db_session)
    await db_session.commit()
    caller = bearer(app, user)
    assert (await post(client, ME, headers=caller.headers))["data"]["me"] is not None

    # when
    if change == "deactivate":
        await db_session.execute(
            update(users_models.User).where(users_models.User.id == user.id).values(is_active=False)
        )
    else:
        await db_session.execute(delete(users_models.User).where(users_models.User.id == user.id))
    await db_session.commit()
    body = await post(client, ME, headers=caller.headers)

    # then
    assert (body.get("data", "absent"), error_codes(body)) == ("absent", ["UNAUTHENTICATED"])


async def test_role_changes_apply_to_existing_tokens_at_once(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: a customer's token, issued while they were only a customer
    user = await factories.create_user(db_session)
    await db_session.commit()
    caller = bearer(app, user)

    # when
    await db_session.execute(update(users_models.User).where(users_models.User.id == user.id).values(roles=["ADMIN"]))
    await db_session.commit()
    body = await post(client, "{ users { totalCount } }", headers=caller.headers)

    # then
    assert body["data"] == {"users": {"totalCount": 1}}


def _rsa_pem() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture(scope="module")
def rsa_keys() -> dict[str, tuple[str, str]]:
    return {"old": _rsa_pem(), "new": _rsa_pem(), "stranger": _rsa_pem()}


async def _rs256_client(
    settings: Settings, private: str, kid: str, older: dict[str, str]
) -> AsyncIterator[AsyncClient]:
    rs_settings = Settings(
        database_url=settings.database_url,
        # The key as an environment variable carries it: one line, its newlines written as \n.
        jwt_private_key=private.replace("\n", "\\n"),
        jwt_key_id=kid,
        jwt_public_keys=older,
        _env_file=None,
    )
    app = create_app(rs_settings)
    async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def test_rs256_refuses_algorithm_confusion_and_unknown_kids_and_honours_rotation(
    settings: Settings, db_session: AsyncSession, rsa_keys: dict[str, tuple[str, str]]
) -> None:
    # given: a user, a token from the old key, then a rotation to the new key that still publishes the old one
    user = await factories.create_user(db_session)
    await db_session.commit()
    (old_private, old_public), (new_private, _) = rsa_keys["old"], rsa_keys["new"]
    async for old_client in _rs256_client(settings, old_private, "old", {}):
        old_token = bearer(old_client.app, user).headers["Authorization"]  # type: ignore[attr-defined]
    claims = _claims(settings, user.id)
    header = {"alg": "HS256", "typ": "JWT", "kid": "old"}
    body = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in claims.items()}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
    confused = f"{signing_input}.{_b64(hmac.new(old_public.encode(), signing_input.encode(), hashlib.sha256).digest())}"
    unknown_kid = jwt.encode(claims, rsa_keys["stranger"][0], algorithm="RS256", headers={"kid": "stranger"})

    # when
    async for client in _rs256_client(settings, new_private, "new", {"old": old_public}):
        new_token = bearer(client.app, user).headers["Authorization"]  # type: ignore[attr-defined]
        answers = {
            name: await post(client, ME, headers={"Authorization": value})
            for name, value in {
                "old key, still published": old_token,
                "new key": new_token,
                "HS256 signed with the public key": f"Bearer {confused}",
                "unknown kid": f"Bearer {unknown_kid}",
            }.items()
        }

    # then
    assert {name: error_codes(body) for name, body in answers.items()} == {
        "old key, still published": [],
        "new key": [],
        "HS256 signed with the public key": ["UNAUTHENTICATED"],
        "unknown kid": ["UNAUTHENTICATED"],
    }
    assert jwt.get_unverified_header(new_token.split()[1])["kid"] == "new"


async def _key_state(session: AsyncSession, key_id: int) -> users_models.ApiKey:
    session.expire_all()
    return (await session.execute(select(users_models.ApiKey).where(users_models.ApiKey.id == key_id))).scalar_one()


@pytest.mark.parametrize("state", ["revoked", "expired", "owner deactivated", "wrong secret"])
async def test_unusable_api_keys_are_unauthenticated(
    state: str, client: AsyncClient, db_session: AsyncSession, customer_api_key: Account
) -> None:
    # given: a key that worked
    user, key, caller = customer_api_key.user, customer_api_key.key, customer_api_key
    assert key is not None
    assert error_codes(await post(client, ME, headers=caller.headers)) == []
    headers = caller.headers

    # when
    if state == "revoked":
        key.revoked_at = utcnow()
    elif state == "expired":
        key.expires_at = utcnow() - timedelta(seconds=1)
    elif state == "owner deactivated":
        user.is_active = False
    else:
        headers = {"X-API-Key": headers["X-API-Key"][:-2] + "xx"}
    await db_session.commit()
    body = await post(client, ME, headers=headers)

    # then
    assert (body.get("data", "absent"), error_codes(body)) == ("absent", ["UNAUTHENTICATED"])


async def test_api_key_last_used_at_is_written_at_most_once_a_minute(
    client: AsyncClient, db_session: AsyncSession, customer_api_key: Account
) -> None:
    # given
    key, caller = customer_api_key.key, customer_api_key
    assert key is not None

    # when: three uses in a row, then one after the last recorded use is made two minutes old
    for _ in range(3):
        await post(client, ME, headers=caller.headers)
    first_use = (await _key_state(db_session, key.id)).last_used_at
    for _ in range(3):
        await post(client, ME, headers=caller.headers)
    unchanged = (await _key_state(db_session, key.id)).last_used_at
    assert first_use is not None
    stale = first_use - timedelta(minutes=2)
    await db_session.execute(
        update(users_models.ApiKey).where(users_models.ApiKey.id == key.id).values(last_used_at=stale)
    )
    await db_session.commit()
    await post(client, ME, headers=caller.headers)
    refreshed = (await _key_state(db_session, key.id)).last_used_at

    # then
    assert unchanged == first_use
    assert refreshed is not None
    assert refreshed > stale + timedelta(minutes=1)


async def test_api_key_secrets_are_stored_only_as_hashes_and_never_logged(
    app: FastAPI,
    client: AsyncClient,
    db_session: AsyncSession,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    staff: Account,
) -> None:
    # given
    caplog.set_level(logging.DEBUG)
    user, app_caller = staff.user, staff

    # when: a key is created over the API, then used
    body = await post(
        client,
        'mutation { apiKeyCreate(input: {name: "ci"}) { secret apiKey { prefix roles } userErrors { code } } }',
        headers=app_caller.headers,
    )
    created = body["data"]["apiKeyCreate"]
    full_key: str = created["secret"]
    used = await post(client, ME, headers={"X-API-Key": full_key})
    rows = (await db_session.execute(select(users_models.ApiKey.__table__))).all()
    output = caplog.text + "".join(capfd.readouterr())

    # then
    prefix, _, secret = full_key.partition(".")
    assert created["apiKey"] == {"prefix": prefix, "roles": ["STAFF"]}
    assert used["data"]["me"]["email"] == user.email
    assert len(rows) == 1
    assert not any(secret in str(value) for value in rows[0])
    assert secret not in output
    assert full_key not in output


async def test_require_role_guards_plain_fastapi_routes(
    app: FastAPI, client: AsyncClient, customer: Account, staff: Account
) -> None:
    # given: a REST route (none ship besides health and metrics) behind require_role(STAFF)
    async def staff_only(principal: Principal = Depends(require_role(Role.STAFF))) -> dict[str, int | None]:
        return {"user": principal.user_id}

    app.add_api_route("/staff-only", staff_only)

    # when
    statuses = {
        "anonymous": (await client.get("/staff-only")).status_code,
        "refused token": (await client.get("/staff-only", headers={"Authorization": "Bearer nope"})).status_code,
        "customer": (await client.get("/staff-only", headers=customer.headers)).status_code,
        "staff": (await client.get("/staff-only", headers=staff.headers)).json(),
    }

    # then
    assert statuses == {"anonymous": 401, "refused token": 401, "customer": 403, "staff": {"user": staff.user_id}}
