"""Password hashing with argon2 (pwdlib), always off the event loop."""

import asyncio
from functools import lru_cache

from pwdlib import PasswordHash


@lru_cache(maxsize=1)
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


async def hash_password(password: str) -> str:
    """Hash a password in a worker thread (argon2 takes tens of milliseconds of CPU)."""
    return await asyncio.to_thread(_hasher().hash, password)


async def verify_password(password: str, password_hash: str) -> bool:
    """Check a password against its hash in a worker thread."""
    return await asyncio.to_thread(_hasher().verify, password, password_hash)
