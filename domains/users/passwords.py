"""Password hashing with argon2id (pwdlib), always off the event loop.

Hashing is deliberately expensive, so it runs in a small pool of its own that leaves one core to
the event loop: a burst of sign-ins queues there instead of starving every other request. Callers
take a `hashing_slot()` around a sign-in's or registration's database work and hashing, so such a
burst waits for its turn holding nothing, instead of lining up at the database pool first.
Parameters are OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane). Hashes made with other
parameters still verify, and are replaced on the next successful sign-in.
"""

import asyncio
import contextlib
import os
import secrets
import threading
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher

MEMORY_COST_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1
HASHING_NICENESS = 10
SLOTS_PER_HASHING_THREAD = 2  # one hashing, one reading or writing around its hash

_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


@cache
def _hasher() -> PasswordHash:
    return PasswordHash((Argon2Hasher(time_cost=TIME_COST, memory_cost=MEMORY_COST_KIB, parallelism=PARALLELISM),))


def _yield_to_the_event_loop() -> None:
    # Linux schedules threads one by one: a lower priority (nice 10) for the hashing threads means
    # that on a saturated machine the event loop thread gets the CPU first.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


def _hashing_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) - 1)


@cache
def _executor() -> ThreadPoolExecutor:
    # Built on first use, so a forked gunicorn worker makes its own.
    return ThreadPoolExecutor(
        max_workers=_hashing_threads(), thread_name_prefix="password-hash", initializer=_yield_to_the_event_loop
    )


@contextlib.asynccontextmanager
async def hashing_slot() -> AsyncIterator[None]:
    """Wait for a turn at password work; hold no database connection while waiting.

    A flood of 200 sign-ins would otherwise check out 200 connections for their first read at
    once, and every other request, their own writes included, would queue behind that.
    """
    # One semaphore per event loop: an asyncio primitive belongs to the loop that first waits on it.
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(SLOTS_PER_HASHING_THREAD * _hashing_threads())
    async with slots:
        yield


@cache
def _dummy_hash() -> str:
    # Hashed once per process; verifying against it costs what verifying a real password costs.
    return _hasher().hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    """Hash a password in a worker thread (argon2 takes tens of milliseconds of CPU)."""
    return await asyncio.get_running_loop().run_in_executor(_executor(), _hasher().hash, password)


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
    return await asyncio.get_running_loop().run_in_executor(_executor(), _verify, password, password_hash)
