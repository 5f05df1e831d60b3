"""Send one signed webhook attempt: to the addresses checked for it, without redirects, reading no body.

The URL's host is resolved and checked (domains/webhooks/addresses.py) at every attempt, and the
request goes to the checked address, with the name kept for the Host header and TLS (SNI and the
certificate check), so a DNS answer that changes between the check and the connection cannot
point the request inside the network.
"""

import httpx

from domains.webhooks.addresses import Target, UnsafeTargetError, check_target
from domains.webhooks.service import AttemptOutcome, SignedRequest

USER_AGENT = "storefront-graphql-webhooks/1"


def create_client(*, timeout: float) -> httpx.AsyncClient:
    """The worker's one HTTP client: pooled, bounded in time, never following redirects, ignoring proxy settings."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"user-agent": USER_AGENT},
    )


def _pinned(target: Target) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    address = target.addresses[0]
    url = httpx.URL(target.url)
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host:  # an IPv6 literal keeps its brackets in the Host header
        host_header = f"[{target.host}]" if target.port == default_port else f"[{target.host}]:{target.port}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return url.copy_with(host=address), {"host": host_header}, extensions


async def send(client: httpx.AsyncClient, request: SignedRequest, *, allow_private: bool) -> AttemptOutcome:
    """POST one attempt and tell what came of it; never raises for what the endpoint or network does."""
    try:
        target = await check_target(request.url, allow_private=allow_private)
    except UnsafeTargetError as exc:
        return AttemptOutcome(error=str(exc), retry=False)
    url, host, extensions = _pinned(target)
    try:
        # Streamed and closed unread: an endpoint cannot make the worker hold a large answer.
        async with client.stream(
            "POST", url, content=request.body, headers=request.headers | host, extensions=extensions
        ) as response:
            return AttemptOutcome(status=response.status_code)
    except httpx.HTTPError as exc:
        return AttemptOutcome(error=f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__)
