"""Authentication: turn a request's credentials into a Principal."""

from fastapi import Request

from domains.common.principal import ANONYMOUS, Principal


async def get_principal(request: Request) -> Principal:
    """Return who is asking; without credentials, the anonymous principal."""
    return ANONYMOUS
