"""Password hashing with argon2 (pwdlib), always off the event loop."""

import asyncio
import secrets
from functools import cache

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError


@cache
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


@cache
def _dummy_hash() -> str:
    # Hashed once per process; verifying against it costs what verifying a real password costs.
    return _hasher().hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    """Hash a password in a worker thread (argon2 takes tens of milliseconds of CPU)."""
    return await asyncio.to_thread(_hasher().hash, password)


def _verify(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    if password_hash is not None:
        try:
            return _hasher().verify_and_update(password, password_hash)
        except UnknownHashError:
            pass  # an account without a usable password: answer like an unknown one
    _hasher().verify(password, _dummy_hash())
    return False, None


async def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """Check a password in a worker thread; return whether it matched and, if outdated, a fresh hash.

    Without a hash (an unknown account) it verifies against a dummy hash, so the answer takes as long.
    """
    return await asyncio.to_thread(_verify, password, password_hash)
