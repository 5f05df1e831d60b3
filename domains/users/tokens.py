"""Signed tokens: short-lived access JWTs with minimal claims, HS256 or RS256 with key rotation.

Verification pins the algorithm to the configured key's family, so `alg: none` and algorithm
confusion (an HS256 token signed with the RS256 public key) are refused, and it requires every
claim we issue: an expired, not-yet-valid, foreign (`iss`/`aud`) or wrong-`type` token fails.
"""

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt

from domains.common.principal import Role

TokenType = Literal["access", "refresh"]
REQUIRED_CLAIMS = ("sub", "roles", "exp", "iat", "nbf", "jti", "type", "iss", "aud")


class InvalidTokenError(Exception):
    """The token cannot be trusted; the reason is for logs, never for the client."""


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """HS256 with one shared secret, or RS256 with a current private key and every live public key by kid."""

    algorithm: Literal["HS256", "RS256"]
    secret: str | None = None
    private_key: str | None = None
    current_kid: str | None = None
    public_keys: Mapping[str, str] = field(default_factory=dict)

    def signing_key(self) -> tuple[str, dict[str, str]]:
        if self.algorithm == "HS256":
            if not self.secret:
                msg = "HS256 needs a secret"
                raise ValueError(msg)
            return self.secret, {}
        if not self.private_key or not self.current_kid:
            msg = "RS256 needs a private key and its kid"
            raise ValueError(msg)
        return self.private_key, {"kid": self.current_kid}

    def verification_key(self, token: str) -> str:
        if self.algorithm == "HS256":
            return self.secret or ""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(str(exc)) from exc
        if not isinstance(kid, str) or kid not in self.public_keys:
            msg = "unknown key id"
            raise InvalidTokenError(msg)
        return self.public_keys[kid]


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    roles: frozenset[Role]
    token_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenIssuer:
    keys: SigningKeys
    issuer: str
    audience: str
    access_ttl: timedelta = timedelta(minutes=15)
    refresh_ttl: timedelta = timedelta(days=14)

    def issue_access(self, user_id: int, roles: frozenset[Role], *, now: datetime) -> tuple[str, datetime]:
        """Sign an access token for a user; return it with its expiry."""
        return self._issue("access", user_id, roles, now=now, ttl=self.access_ttl)

    def issue_refresh(self, user_id: int, roles: frozenset[Role], *, now: datetime) -> tuple[str, datetime]:
        """Sign a refresh token for a user; return it with its expiry (the database keeps only its hash)."""
        return self._issue("refresh", user_id, roles, now=now, ttl=self.refresh_ttl)

    def verify_access(self, token: str) -> TokenClaims:
        """Check an access token's signature and claims against the current time, or raise InvalidTokenError."""
        return self._verify(token, "access")

    def verify_refresh(self, token: str) -> TokenClaims:
        """Check a refresh token's signature and claims, or raise InvalidTokenError."""
        return self._verify(token, "refresh")

    def _issue(
        self, token_type: TokenType, user_id: int, roles: frozenset[Role], *, now: datetime, ttl: timedelta
    ) -> tuple[str, datetime]:
        expires_at = now + ttl
        claims: dict[str, Any] = {
            "sub": str(user_id),
            "roles": sorted(role.value for role in roles),
            "iat": now,
            "nbf": now,
            "exp": expires_at,
            "jti": uuid.uuid4().hex,
            "type": token_type,
            "iss": self.issuer,
            "aud": self.audience,
        }
        key, headers = self.keys.signing_key()
        return jwt.encode(claims, key, algorithm=self.keys.algorithm, headers=headers), expires_at

    def _verify(self, token: str, token_type: TokenType) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self.keys.verification_key(token),
                algorithms=[self.keys.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": list(REQUIRED_CLAIMS)},
                leeway=0,
            )
            if claims["type"] != token_type:
                msg = f"expected a token of type {token_type}"
                raise InvalidTokenError(msg)
            roles = frozenset(Role(role) for role in claims["roles"])
            expires_at = datetime.fromtimestamp(claims["exp"], tz=UTC)
            return TokenClaims(user_id=int(claims["sub"]), roles=roles, token_id=claims["jti"], expires_at=expires_at)
        except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
            raise InvalidTokenError(str(exc)) from exc


def token_digest(token: str) -> str:
    """Return the stored form of a refresh token or API key secret: its SHA-256, hex.

    Both are long random values, so a fast hash is enough: there is nothing to brute-force.
    """
    return hashlib.sha256(token.encode()).hexdigest()
