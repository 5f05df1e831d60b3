import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from domains.common.principal import Role
from domains.users.tokens import InvalidTokenError, SigningKeys, TokenIssuer

SECRET = "s" * 48


def _rsa_pair() -> tuple[str, str]:
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


PRIVATE, PUBLIC = _rsa_pair()
HS = TokenIssuer(SigningKeys("HS256", secret=SECRET), issuer="storefront", audience="storefront-api")
RS = TokenIssuer(
    SigningKeys("RS256", private_key=PRIVATE, current_kid="k1", public_keys={"k1": PUBLIC}),
    issuer="storefront",
    audience="storefront-api",
)


def _claims(**overrides: object) -> dict[str, object]:
    # The time a test runs, not the time the module was collected: a long suite outlives a token's 15 minutes.
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": "7",
        "roles": ["CUSTOMER"],
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=15),
        "jti": "j",
        "type": "access",
        "iss": "storefront",
        "aud": "storefront-api",
    }
    claims.update(overrides)
    return claims


@pytest.mark.parametrize("issuer", [HS, RS], ids=["HS256", "RS256"])
def test_an_issued_access_token_verifies_with_its_claims(issuer: TokenIssuer) -> None:
    # given
    token, expires_at = issuer.issue_access(7, frozenset({Role.STAFF}), now=datetime.now(UTC))

    # when
    claims = issuer.verify_access(token)

    # then
    assert (claims.user_id, claims.roles) == (7, frozenset({Role.STAFF}))
    assert claims.expires_at == expires_at.replace(microsecond=0)
    assert set(jwt.decode(token, options={"verify_signature": False})) == {
        "sub",
        "roles",
        "exp",
        "iat",
        "nbf",
        "jti",
        "type",
        "iss",
        "aud",
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _hmac_token(header: dict[str, str], claims: dict[str, object], key: bytes) -> str:
    # PyJWT will not sign HS256 with a PEM key, so build the confused token by hand.
    body = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in claims.items()}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _forge_hs(claims: dict[str, object], key: str = SECRET) -> str:
    return jwt.encode(claims, key, algorithm="HS256")


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["roles"] = ["ADMIN"]
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def _ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


# Made when the test runs (a token made at collection may have expired, or become valid, by then).
REFUSED_HS: dict[str, Callable[[], str]] = {
    "alg none": lambda: jwt.encode(_claims(), "", algorithm="none"),
    "expired": lambda: _forge_hs(_claims(exp=_ago(seconds=1), iat=_ago(minutes=16))),
    "not yet valid": lambda: _forge_hs(_claims(nbf=datetime.now(UTC) + timedelta(minutes=5))),
    "wrong audience": lambda: _forge_hs(_claims(aud="another-api")),
    "wrong issuer": lambda: _forge_hs(_claims(iss="someone-else")),
    "refresh used as access": lambda: _forge_hs(_claims(type="refresh")),
    "missing jti": lambda: _forge_hs({k: v for k, v in _claims().items() if k != "jti"}),
    "other secret": lambda: _forge_hs(_claims(), key="x" * 48),
    "tampered payload": lambda: _tamper(HS.issue_access(7, frozenset({Role.CUSTOMER}), now=datetime.now(UTC))[0]),
    "garbage": lambda: "not.a.token",
}


@pytest.mark.parametrize("make_token", REFUSED_HS.values(), ids=REFUSED_HS.keys())
def test_hs256_refuses_untrustworthy_tokens(make_token: Callable[[], str]) -> None:
    # given
    token = make_token()

    # when / then
    with pytest.raises(InvalidTokenError):
        HS.verify_access(token)


def test_rs256_refuses_algorithm_confusion_and_unknown_keys() -> None:
    # given: an HS256 token signed with the RS256 public key, and tokens under unknown or no kid
    confused = _hmac_token({"alg": "HS256", "typ": "JWT", "kid": "k1"}, _claims(), PUBLIC.encode())
    other_private, _ = _rsa_pair()
    unknown_kid = jwt.encode(_claims(), other_private, algorithm="RS256", headers={"kid": "k9"})
    no_kid = jwt.encode(_claims(), PRIVATE, algorithm="RS256")

    # when / then
    for token in (confused, unknown_kid, no_kid):
        with pytest.raises(InvalidTokenError):
            RS.verify_access(token)


def test_rs256_rotation_keeps_old_tokens_valid_until_they_expire() -> None:
    # given: a token signed with k1, then a rotation to k2 that still publishes k1
    old_token, _ = RS.issue_access(7, frozenset({Role.CUSTOMER}), now=datetime.now(UTC))
    new_private, new_public = _rsa_pair()
    rotated = TokenIssuer(
        SigningKeys("RS256", private_key=new_private, current_kid="k2", public_keys={"k1": PUBLIC, "k2": new_public}),
        issuer="storefront",
        audience="storefront-api",
    )

    # when
    new_token, _ = rotated.issue_access(8, frozenset({Role.CUSTOMER}), now=datetime.now(UTC))

    # then
    assert rotated.verify_access(old_token).user_id == 7
    assert rotated.verify_access(new_token).user_id == 8
    assert jwt.get_unverified_header(new_token)["kid"] == "k2"
