"""Where a webhook may be sent: public addresses only, unless private ones are allowed (development).

A URL's host is resolved first and every address it resolves to is checked, so a DNS name that
points inside the network is refused like the address itself. The sender then connects to the
addresses checked here, not to whatever a second lookup returns (no DNS rebinding in between).
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

RESOLVE_TIMEOUT_SECONDS = 5.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTargetError(Exception):
    """The URL cannot be a webhook target; the message says why and may be shown to staff."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL and the addresses its host resolved to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def is_public(address: IPAddress) -> bool:
    """Whether an address is reachable on the public internet (not private, loopback, link-local, ...)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def parse_url(url: str) -> tuple[str, str, int]:
    """Return the scheme, host and port of an http(s) URL; UnsafeTargetError when it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTargetError("Enter an http:// or https:// URL.") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UnsafeTargetError("Enter an http:// or https:// URL.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTargetError("Credentials cannot be part of a webhook URL.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int) -> tuple[str, ...]:
    """Every address `host` resolves to (an address literal: itself); UnsafeTargetError when none."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return (str(literal),)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise UnsafeTargetError(f"The host name {host!r} does not resolve.") from exc
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeTargetError(f"The host name {host!r} does not resolve.")
    return addresses


async def check_target(url: str, *, allow_private: bool) -> Target:
    """Parse and resolve a webhook URL; refuse it when any of its addresses is not public (unless allowed)."""
    scheme, host, port = parse_url(url)
    addresses = await resolve(host, port)
    if not allow_private:
        for address in addresses:
            if not is_public(ipaddress.ip_address(address.split("%", 1)[0])):
                raise UnsafeTargetError(
                    "The URL points to a private, loopback or otherwise internal address; "
                    "webhooks are sent to public addresses only."
                )
    return Target(url=url, scheme=scheme, host=host, port=port, addresses=addresses)
