"""GraphQL over HTTP at the edge: refusals as GraphQL errors, media types, CSRF prevention, request shape.

Every refusal made before a GraphQL operation runs (bad JSON, wrong method, a request a plain HTML
form could have sent, a body over the limit, a route that does not exist) is answered with the
same body a client already parses for GraphQL errors:

    {"errors": [{"message": "...", "extensions": {"code": "BAD_REQUEST", "requestId": "..."}}]}
"""

from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Scope
from strawberry.http import GraphQLRequestData

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"

BAD_REQUEST = "BAD_REQUEST"
NOT_FOUND = "NOT_FOUND"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
UNAUTHENTICATED = "UNAUTHENTICATED"
CODE_BY_STATUS = {
    400: BAD_REQUEST,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: PAYLOAD_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
}

# The content types a plain HTML <form> can send without a CORS preflight (Apollo Server's list).
SIMPLE_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
PREFLIGHT_HEADERS = ("x-requested-with", "apollo-require-preflight", "x-apollo-operation-name")
CSRF_REFUSED = (
    "This request has been blocked as a possible cross-site request forgery (CSRF). Send it with a "
    "'Content-Type: application/json' header, or with a non-empty 'X-Requested-With', "
    "'Apollo-Require-Preflight' or 'X-Apollo-Operation-Name' header."
)
UNSUPPORTED_CONTENT_TYPE = "POST a JSON body with 'Content-Type: application/json' (UTF-8)."
NOT_AN_OBJECT = (
    "The request body must be a JSON object {query, variables, operationName, extensions}; batching is not supported."
)


class HTTPRefusal(Exception):  # noqa: N818 - a refusal is an answer, not an error of ours
    """A request refused before any GraphQL operation ran; answered as a GraphQL-shaped error."""

    def __init__(
        self, status: int, message: str, *, headers: Mapping[str, str] | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODE_BY_STATUS.get(status, BAD_REQUEST if status < 500 else "INTERNAL_SERVER_ERROR")
        self.message = message
        self.headers = dict(headers or {})


def _media_ranges(accept: str) -> Iterator[tuple[str, float]]:
    for item in accept.split(","):
        media_range, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        yield media_range.lower(), quality


def negotiate_media_type(accept: str | None) -> str:
    """Pick the response media type: application/graphql-response+json only when the client names it first.

    A wildcard (`*/*`, `application/*`) or no Accept at all keeps application/json, which the
    GraphQL-over-HTTP spec asks of servers until legacy clients have moved on.
    """
    named = dict(_media_ranges(accept or ""))
    wanted = named.get(GRAPHQL_RESPONSE_JSON, 0.0)
    if wanted > 0 and wanted >= named.get(APPLICATION_JSON, 0.0):
        return GRAPHQL_RESPONSE_JSON
    return APPLICATION_JSON


def refusal_body(message: str, code: str, request_id: str | None) -> bytes:
    """Encode a refusal as a GraphQL response with one error and no `data`."""
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code, "requestId": request_id}}]})


def refusal_response(scope: Scope, refusal: HTTPRefusal) -> Response:
    """Answer a refusal for this request: its status, its request id, the media type the client accepts."""
    headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope.get("headers", [])}
    request_id = scope.get("state", {}).get("request_id")
    return Response(
        refusal_body(refusal.message, refusal.code, request_id),
        status_code=refusal.status,
        # A refusal is about this request (a 404 or 405 is otherwise cacheable by heuristics).
        headers={"cache-control": "private, no-store", **refusal.headers},
        media_type=negotiate_media_type(headers.get("accept")),
    )


def _parse_content_type(content_type: str) -> tuple[str, dict[str, str]]:
    essence, *parameters = content_type.split(";")
    pairs = (parameter.partition("=") for parameter in parameters)
    return essence.strip().lower(), {name.strip().lower(): value.strip().strip('"').lower() for name, _, value in pairs}


def refuse_cross_site_request(headers: Mapping[str, str]) -> None:
    """Refuse what a plain HTML form or link could send cross-site (CSRF), as Apollo Server does.

    A browser sends such a request with the user's cookies and without asking the server first
    (no CORS preflight): a GET, or a POST whose content type is one a form can produce. Any other
    content type, or one of the preflight headers, makes the browser ask first, and CORS decides.
    """
    content_type = headers.get("content-type")
    if content_type is not None and _parse_content_type(content_type)[0] not in SIMPLE_CONTENT_TYPES:
        return
    if any(headers.get(name) for name in PREFLIGHT_HEADERS):
        return
    raise HTTPRefusal(400, CSRF_REFUSED)


def require_json_content_type(content_type: str | None) -> None:
    """Refuse a POST body that is not JSON in UTF-8 with 415."""
    essence, parameters = _parse_content_type(content_type or "")
    if essence != APPLICATION_JSON or parameters.get("charset", "utf-8") != "utf-8":
        raise HTTPRefusal(415, UNSUPPORTED_CONTENT_TYPE)


def _optional(data: dict[str, Any], key: str, kind: type, described: str) -> Any:
    value = data.get(key)
    if value is not None and not isinstance(value, kind):
        raise HTTPRefusal(400, f"The request's `{key}` must be {described} or null.")
    return value


def request_data_from(data: object) -> GraphQLRequestData:
    """Check the shape of a decoded GraphQL request and return it; refuse anything else with 400."""
    if not isinstance(data, dict):
        raise HTTPRefusal(400, NOT_AN_OBJECT)
    return GraphQLRequestData(
        # A missing query may still be filled in by an extension (persisted operations).
        query=_optional(data, "query", str, "a string"),
        variables=_optional(data, "variables", dict, "an object"),
        operation_name=_optional(data, "operationName", str, "a string"),
        extensions=_optional(data, "extensions", dict, "an object"),
    )
