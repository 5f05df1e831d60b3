"""Infrastructure: read the credential a client sent, without judging it.

HTTP: `Authorization: Bearer <access JWT>` or `X-API-Key: <key>`.
WebSocket: the `connection_init` payload, `{"authorization": "Bearer …"}` or `{"apiKey": "…"}`.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from domains.common.exceptions import UnauthenticatedError

API_KEY_HEADER = "X-API-Key"
MAX_CREDENTIAL_LENGTH = 4096
BEARER_EXPECTED = "The Authorization header must be `Bearer <access token>`."
ONE_CREDENTIAL = "Send one credential: either a bearer token or an API key, not both."
MALFORMED_PAYLOAD = "The connection_init payload's `authorization` and `apiKey` must be strings."


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the client presented; both None means anonymous."""

    bearer_token: str | None = None
    api_key: str | None = None


def _bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_CREDENTIAL_LENGTH:
        raise UnauthenticatedError(BEARER_EXPECTED)
    return token


def _checked(bearer_token: str | None, api_key: str | None) -> Credentials:
    if bearer_token is not None and api_key is not None:
        raise UnauthenticatedError(ONE_CREDENTIAL)
    return Credentials(bearer_token=bearer_token, api_key=api_key)


def read_http_credentials(connection: HTTPConnection) -> Credentials:
    """Read the credential of a request or of a WebSocket upgrade; raise UnauthenticatedError when malformed."""
    api_key = connection.headers.get(API_KEY_HEADER)
    return _checked(_bearer(connection.headers.get("Authorization")), api_key.strip() if api_key is not None else None)


def read_connection_params(payload: Mapping[str, object] | None) -> Credentials:
    """Read the credential of a `connection_init` payload; raise UnauthenticatedError when malformed."""
    if not payload:
        return Credentials()
    authorization = payload.get("authorization", payload.get("Authorization"))
    api_key = payload.get("apiKey")
    if not isinstance(authorization, str | None) or not isinstance(api_key, str | None):
        raise UnauthenticatedError(MALFORMED_PAYLOAD)
    return _checked(_bearer(authorization), api_key.strip() if api_key is not None else None)
