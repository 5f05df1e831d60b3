"""Authentication: turn a request's credentials into a Principal.

A missing credential gives the anonymous principal; one that cannot be trusted is refused with
UNAUTHENTICATED, never downgraded to anonymous.
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, HTTPException, status
from starlette.requests import HTTPConnection

from api.auth.credentials import Credentials, read_http_credentials
from api.dependencies import get_request_db
from api.settings import Settings
from domains.common.base import utcnow
from domains.common.exceptions import FORBIDDEN_MESSAGE, SIGN_IN_REQUIRED, UnauthenticatedError
from domains.common.principal import ANONYMOUS, Principal, Role
from domains.users import service as users_service
from domains.users.tokens import SigningKeys, TokenIssuer
from schema.context import Authentication
from schema.unit_of_work import RequestDb


def _signing_keys(settings: Settings) -> SigningKeys:
    if settings.jwt_private_key is None:
        return SigningKeys("HS256", secret=settings.jwt_secret.get_secret_value())
    pem = settings.jwt_private_key.get_secret_value()
    try:
        private_key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        msg = "JWT_PRIVATE_KEY must be an unencrypted PEM private key"
        raise ValueError(msg) from exc
    if not isinstance(private_key, rsa.RSAPrivateKey):
        msg = "JWT_PRIVATE_KEY must be an RSA key (RS256)"
        raise ValueError(msg)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Older public keys stay listed after a rotation, so tokens they signed verify until they expire.
    public_keys = {**settings.jwt_public_keys, settings.jwt_key_id: public_pem.decode()}
    return SigningKeys("RS256", private_key=pem, current_kid=settings.jwt_key_id, public_keys=public_keys)


def build_token_issuer(settings: Settings) -> TokenIssuer:
    """Build the token signer and verifier these settings describe: HS256, or RS256 when a key pair is set."""
    return TokenIssuer(
        keys=_signing_keys(settings),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
    )


async def authenticate(connection: HTTPConnection, db: RequestDb, credentials: Credentials) -> Principal:
    """Return the principal of these credentials; raise UnauthenticatedError when they cannot be trusted."""
    state = connection.app.state
    if credentials.bearer_token is not None:
        # Verified before the database is asked: a forged or expired token borrows no connection.
        claims = users_service.verify_bearer(issuer=state.token_issuer, token=credentials.bearer_token)
        async with db.read() as session:
            return await users_service.authenticate_claims(session, claims)
    if credentials.api_key is None:
        return ANONYMOUS
    now = utcnow()
    interval = timedelta(seconds=state.settings.api_key_touch_interval_seconds)
    async with db.read() as session:
        found = await users_service.authenticate_api_key(
            session, key=credentials.api_key, now=now, touch_interval=interval
        )
    if found.stale:
        async with db.transaction() as session:
            await users_service.record_api_key_use(
                session, api_key_id=found.api_key_id, now=now, touch_interval=interval
            )
    return found.principal


async def get_authentication(
    connection: HTTPConnection, db: Annotated[RequestDb, Depends(get_request_db)]
) -> Authentication:
    """Authenticate the request's headers; GraphQL turns a refusal into an UNAUTHENTICATED error."""
    try:
        return Authentication(await authenticate(connection, db, read_http_credentials(connection)))
    except UnauthenticatedError as exc:
        return Authentication(ANONYMOUS, exc)


async def get_principal(authentication: Annotated[Authentication, Depends(get_authentication)]) -> Principal:
    """Return who is asking, for plain FastAPI routes: a refused credential is a 401."""
    if authentication.refusal is not None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, authentication.refusal.message, headers={"WWW-Authenticate": "Bearer"}
        )
    return authentication.principal


def require_role(role: Role) -> Callable[..., Awaitable[Principal]]:
    """Build a FastAPI dependency that lets only principals holding `role` through (401 or 403 otherwise)."""

    async def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.is_authenticated:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, SIGN_IN_REQUIRED, headers={"WWW-Authenticate": "Bearer"})
        if not principal.has_role(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN_MESSAGE)
        return principal

    return dependency
