"""HTTP caching of GraphQL answers (RFC 9110, 9111): Cache-Control, Vary, a strong ETag, and 304.

Only a public answer (below) carries an ETag and may be answered 304.

Which answers any cache may keep is the schema's decision alone (schema/extensions/cache_control.py
`shared_max_age`: an anonymous GET query answered without errors, selecting nothing PRIVATE): it
marks them `public, max-age=N`, and leaves this client's figures out of their body. Here the edge
uses that mark, and answers everything else `private, no-store`: such an answer depends on who asks,
or records that something was done, and its `extensions.cost` changes with every request, so a
stored copy could never be revalidated.

Every answer varies on `Accept` (the media type is negotiated), `Authorization` and `X-API-Key`:
a shared cache may otherwise hand a `public` answer to a request with credentials (RFC 9111 §3.5),
and a staff member must see unpublished products. The CORS middleware adds `Origin` when CORS is on.
The CSRF headers a GET needs are left out: a public answer is the same with or without them.
"""

import hashlib
import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response

from schema.extensions.cache_control import is_marked_shared

NOT_STORED = "private, no-store"
VARY = ("Accept", "Authorization", "X-API-Key")
# One member of If-None-Match: `*`, or an entity-tag, weak or not (an opaque tag may hold commas).
_MEMBER = re.compile(r'\s*(\*|(?:W/)?"[^"]*")\s*(?:,|$)')


def add_vary(headers: MutableHeaders, *names: str) -> None:
    """Add these request headers to the response's `Vary`, once each."""
    present = [item.strip() for value in headers.getlist("vary") for item in value.split(",") if item.strip()]
    known = {item.lower() for item in present}
    headers["vary"] = ", ".join(present + [name for name in names if name.lower() not in known])


def strong_etag(media_type: str, body: bytes) -> str:
    """A strong entity-tag of these exact bytes in this media type (two negotiated answers never share one)."""
    digest = hashlib.sha256(media_type.encode("latin-1") + b"\n" + body).hexdigest()
    return f'"{digest[:32]}"'


def none_match(if_none_match: str | None, etag: str) -> bool:
    """Whether If-None-Match names the current answer: `*`, or a tag equal by weak comparison (RFC 9110 §13.1.2)."""
    if not if_none_match:
        return False
    current = etag.removeprefix("W/")
    for match in _MEMBER.finditer(if_none_match):
        member = match.group(1)
        if member == "*" or member.removeprefix("W/") == current:
            return True
    return False


def not_modified(response: Response) -> Response:
    """The 304 for a request whose copy is current: the answer's headers (ETag, Vary...) without its body."""
    answer = Response(status_code=304)
    answer.headers.raw.extend(
        (name, value) for name, value in response.headers.raw if name not in (b"content-length", b"content-type")
    )
    return answer


def settle(request_headers: Headers, response: Response, *, errors: bool) -> Response:
    """Give an answer its caching headers; a 304 instead when the client's copy is current.

    Shared only if the schema marked it so (it weighed the method and the credentials). `errors` covers
    one case the schema never saw: an extension failing on its way out after the mark, which turns
    the answer into an error (Strawberry's execute), and an error is never stored.
    """
    shared = is_marked_shared(response) and not errors
    add_vary(response.headers, *VARY)
    if not shared:
        # Not stored, so never revalidated: no ETag (nor the hashing of a body that changes every time).
        response.headers["cache-control"] = NOT_STORED
        return response
    etag = strong_etag(response.headers.get("content-type", ""), bytes(response.body))
    response.headers["etag"] = etag
    # Several If-None-Match lines are one list (RFC 9110 §5.3).
    if_none_match = ", ".join(request_headers.getlist("if-none-match"))
    return not_modified(response) if none_match(if_none_match, etag) else response
