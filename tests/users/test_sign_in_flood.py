"""A flood of sign-ins on a small pool: argon2 runs with no pooled connection held, and catalog reads keep answering.

Two real observers, no mocks: SQLAlchemy pool events record every checkout and checkin of the
app's pool, tagged with the sign-in (its password) whose task made it; a sampler thread reads
the hashing threads' stacks to see whose password is being hashed at that instant. With the
hashing inside the transaction, both fail: the sign-ins hold the two connections through every
argon2 run, the pool's queue outgrows its timeout, and a sampled hash belongs to a holder.
"""

import asyncio
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from types import FrameType
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from prometheus_client import REGISTRY
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import QueuePool

from api.app import create_app
from api.settings import Settings
from domains.users import models as users_models
from domains.users import passwords
from tests import factories

SIGN_INS = 200
ACCOUNTS = 40
OUTDATED_ACCOUNTS = 8  # stored with weaker argon2 parameters: a right password rehashes them
CATALOG_READERS = 2
POOL_SIZE = 2
POOL_TIMEOUT_SECONDS = 4.0
# It measures who waits for whom: it runs after the parallel suite, alone and untraced, because a
# loaded machine or a coverage tracer would stretch every wait for reasons of their own.
pytestmark = pytest.mark.alone
SAMPLE_EVERY_SECONDS = 0.001
TOKEN_CREATE = """
mutation ($email: String!, $password: String!) {
  tokenCreate(input: {email: $email, password: $password}) { accessToken user { email } userErrors { code } }
}
"""
ACCOUNT_REGISTER = """
mutation ($input: AccountRegisterInput!) { accountRegister(input: $input) { user { email } userErrors { code } } }
"""
CATALOG = "{ products(first: 5) { nodes { name } } }"
CURRENT_HASH_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"

# The password of the request a task serves; pool events read it to tag the connection they hand out.
_password_in_flight: ContextVar[str | None] = ContextVar("password_in_flight", default=None)


@dataclass(frozen=True, slots=True)
class Attempt:
    email: str
    password: str  # unique per attempt, so it names the attempt in the pool's and the hashing threads' records
    right: bool


@dataclass
class PoolWatch:
    """Every checkout and checkin of one pool, tagged with the password of the request that made it."""

    pool: QueuePool
    lock: threading.Lock = field(default_factory=threading.Lock)
    holders: dict[int, tuple[str | None, float]] = field(default_factory=dict)
    max_checked_out: int = 0
    seconds_held_by_password_requests: float = 0.0

    def on_checkout(self, _dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        with self.lock:
            self.holders[id(record)] = (_password_in_flight.get(), time.perf_counter())
            self.max_checked_out = max(self.max_checked_out, self.pool.checkedout())

    def on_checkin(self, _dbapi_connection: Any, record: Any) -> None:
        with self.lock:
            password, since = self.holders.pop(id(record), (None, 0.0))
            if password is not None:
                self.seconds_held_by_password_requests += time.perf_counter() - since

    def held_by(self) -> set[str]:
        """The passwords whose requests hold a connection now; call with `lock` held."""
        return {password for password, _ in self.holders.values() if password is not None}


def _password_hashed_in(frame: FrameType | None) -> str | None:
    # `_verify` (sign-in) and `PasswordHash.hash` (registration) take the password as a local; the
    # outermost one counts (`_verify` may hash too: a rehash, or the process's dummy hash on first use).
    # The hashing thread sits in argon2's C code with the GIL released, so reading its frames is safe.
    password = None
    while frame is not None:
        if frame.f_code in (passwords._verify.__code__, PasswordHash.hash.__code__):
            password = frame.f_locals.get("password")
        frame = frame.f_back
    return password if isinstance(password, str) else None


@dataclass
class HashWatch:
    """Samples, from a thread of its own, which passwords are being hashed and whose requests hold connections."""

    pool_watch: PoolWatch
    stop: threading.Event = field(default_factory=threading.Event)
    hashed: set[str] = field(default_factory=set)
    hashed_while_holding: set[str] = field(default_factory=set)
    hashing_seconds: float = 0.0

    def run(self) -> None:
        last = time.perf_counter()
        while not self.stop.is_set():
            # Under the pool watch's lock no checkout or checkin happens, so "held" and "being
            # hashed" describe one instant: a request seen in both held a connection through its hash.
            with self.pool_watch.lock:
                frames = sys._current_frames()
                hashing = {p for p in map(_password_hashed_in, frames.values()) if p is not None}
                held = self.pool_watch.held_by()
            now = time.perf_counter()
            self.hashing_seconds += (now - last) * len(hashing)
            last = now
            self.hashed |= hashing
            self.hashed_while_holding |= hashing & held
            time.sleep(SAMPLE_EVERY_SECONDS)


@pytest.fixture
def flood_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "db_pool_size": POOL_SIZE,
            "db_max_overflow": 0,
            "db_pool_timeout": POOL_TIMEOUT_SECONDS,
            "login_rate_limit": "100000/minute",
            "login_rate_limit_per_ip": "100000/minute",
            "login_rate_limit_per_email": "100000/minute",
            "graphql_rate_limit": "100000/minute",
            "cost_budget": "100000000/minute",
            # 200 hashes queue on one hashing thread for longer than the default 10 s ceiling, which
            # would cancel the last of them (shedding load, as it should); here every one is checked.
            "operation_timeout_seconds": 300,
        }
    )


@pytest.fixture
async def flood_app(flood_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(flood_settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def flood_client(flood_app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=flood_app), base_url="http://testserver") as http:
        yield http


@contextmanager
def _watching(app: FastAPI) -> Iterator[tuple[PoolWatch, HashWatch]]:
    """Record the app's pool and sample the hashing threads while the block runs."""
    engine: AsyncEngine = app.state.engine
    assert isinstance(engine.pool, QueuePool)
    pool_watch = PoolWatch(engine.pool)
    hash_watch = HashWatch(pool_watch)
    event.listen(engine.sync_engine, "checkout", pool_watch.on_checkout)
    event.listen(engine.sync_engine, "checkin", pool_watch.on_checkin)
    sampler = threading.Thread(target=hash_watch.run, name="hash-watch", daemon=True)
    sampler.start()
    try:
        yield pool_watch, hash_watch
    finally:
        hash_watch.stop.set()
        sampler.join()
        event.remove(engine.sync_engine, "checkout", pool_watch.on_checkout)
        event.remove(engine.sync_engine, "checkin", pool_watch.on_checkin)


@cache
def _account_hashes() -> tuple[str, ...]:
    # Made once per process (both floods use them), the first few with weaker, outdated parameters.
    outdated = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8 * 1024, parallelism=1),))
    return tuple(
        (outdated if n < OUTDATED_ACCOUNTS else passwords._hasher()).hash(f"the password of account {n}")
        for n in range(ACCOUNTS)
    )


async def _seed(session: AsyncSession) -> list[Attempt]:
    """Accounts with a password each and a catalog; return the flood: right, wrong and unknown-address attempts."""
    for _ in range(6):
        await factories.create_product(session)
    accounts: list[users_models.User] = []
    for password_hash in _account_hashes():
        user = await factories.create_user(session)
        user.password_hash = password_hash
        accounts.append(user)
    await session.commit()
    attempts = []
    for n in range(SIGN_INS):
        account = accounts[n % ACCOUNTS]
        if n < ACCOUNTS:  # each account signs in once with its password
            attempts.append(Attempt(account.email, f"the password of account {n}", right=True))
        elif n % 2:
            attempts.append(Attempt(account.email, f"wrong password {n}", right=False))
        else:
            attempts.append(Attempt(f"nobody{n}@example.com", f"unknown address {n}", right=False))
    return attempts


async def _sign_in(client: AsyncClient, attempt: Attempt) -> Response:
    _password_in_flight.set(attempt.password)  # this task's context only: gather gives each its own
    return await client.post(
        "/graphql", json={"query": TOKEN_CREATE, "variables": {"email": attempt.email, "password": attempt.password}}
    )


def _answer(response: Response) -> str:
    """What a sign-in got: its user's e-mail address with a token, a userError code, or what went wrong."""
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    payload = (body.get("data") or {}).get("tokenCreate")
    if payload is None:
        return f"HTTP {response.status_code}: {body.get('errors') or response.text[:200]}"
    if payload["accessToken"] and payload["userErrors"] == []:
        return f"token for {payload['user']['email']}"
    return ",".join(error["code"] for error in payload["userErrors"])


async def _read_catalog_until(client: AsyncClient, done: asyncio.Event) -> list[Response]:
    responses = []
    while not done.is_set():
        responses.append(await client.post("/graphql", json={"query": CATALOG}))
        # A real client's next request arrives over the network, a loop turn later. In process it would
        # come at once, and SQLAlchemy's async pool hands a connection that is free at that instant to
        # whoever asks without awaiting: the reader would take back its own and starve the queue.
        await asyncio.sleep(0)
    return responses


async def _flood(client: AsyncClient, attempts: list[Attempt]) -> tuple[list[str], list[Response]]:
    """Fire every sign-in at once while catalog readers query in a loop; return the answers and the reads."""
    done = asyncio.Event()
    readers = [asyncio.create_task(_read_catalog_until(client, done)) for _ in range(CATALOG_READERS)]
    try:
        responses = await asyncio.gather(*(_sign_in(client, attempt) for attempt in attempts))
    finally:
        done.set()
        reads = [response for batch in await asyncio.gather(*readers) for response in batch]
    return [_answer(response) for response in responses], reads


def _expected(attempt: Attempt) -> str:
    return f"token for {attempt.email}" if attempt.right else "INVALID_CREDENTIALS"


def _pool_timeouts() -> float:
    return REGISTRY.get_sample_value("db_pool_timeouts_total") or 0.0


async def test_a_sign_in_flood_leaves_catalog_reads_answering_on_a_small_pool(
    flood_app: FastAPI, flood_client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: a pool of two connections, 40 accounts (8 with outdated hashes) and a catalog
    attempts = await _seed(db_session)
    timeouts_before = _pool_timeouts()

    # when: 200 sign-ins at once (right, wrong and unknown addresses) while catalog reads keep coming
    with _watching(flood_app) as (pool_watch, hash_watch):
        answers, reads = await _flood(flood_client, attempts)

    # then: every sign-in got its right answer, every read its data, and no request outwaited the pool
    wrong = [
        (attempt, answer) for attempt, answer in zip(attempts, answers, strict=True) if answer != _expected(attempt)
    ]
    assert wrong == [], f"{len(wrong)} of {SIGN_INS} sign-ins answered wrongly, e.g. {wrong[:3]}"
    failed_reads = [r.text[:200] for r in reads if r.status_code != 200 or r.json().get("errors")]
    assert failed_reads == [], f"{len(failed_reads)} of {len(reads)} catalog reads failed, e.g. {failed_reads[:3]}"
    assert len(reads) >= CATALOG_READERS
    assert all(len(r.json()["data"]["products"]["nodes"]) == 5 for r in reads)
    assert _pool_timeouts() == timeouts_before
    # The pool really was two connections, and the sign-ins held them for less time than the hashing
    # took: holding one through each hash would make the first at least as long as the second (old
    # code: 4.6 s held against 1.1 s of hashing sampled before the pool timed out; now 2 to 6 s against 10 to 15 s).
    assert 1 <= pool_watch.max_checked_out <= POOL_SIZE == flood_app.state.engine.pool.size()
    assert hash_watch.hashing_seconds > 0
    assert pool_watch.seconds_held_by_password_requests < hash_watch.hashing_seconds, (
        f"sign-ins held connections {pool_watch.seconds_held_by_password_requests:.2f} s "
        f"while hashing took {hash_watch.hashing_seconds:.2f} s"
    )
    # The outdated hashes were replaced in the short transaction after the check.
    rehashed = await db_session.scalars(select(users_models.User.password_hash).order_by(users_models.User.id))
    assert all(stored.startswith(CURRENT_HASH_PREFIX) for stored in rehashed)


async def test_no_sign_in_holds_a_pooled_connection_while_its_password_is_hashed(
    flood_app: FastAPI, flood_client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    attempts = await _seed(db_session)

    # when
    with _watching(flood_app) as (_, hash_watch):
        answers, _ = await _flood(flood_client, attempts)

    # then: the sampler saw most of the 200 hashes, and never one whose request held a connection
    assert answers == [_expected(attempt) for attempt in attempts]
    assert len(hash_watch.hashed) >= SIGN_INS // 2, f"only {len(hash_watch.hashed)} hashes sampled"
    assert hash_watch.hashed <= {attempt.password for attempt in attempts}
    assert hash_watch.hashed_while_holding == set(), (
        f"{len(hash_watch.hashed_while_holding)} of {len(hash_watch.hashed)} sampled sign-ins held a connection "
        "while their password was hashed"
    )


async def _register(client: AsyncClient, n: int) -> str:
    password = f"registration password {n}"
    _password_in_flight.set(password)
    account = {"email": f"new{n % 27}@example.com", "password": password, "name": f"New {n}"}
    response = await client.post("/graphql", json={"query": ACCOUNT_REGISTER, "variables": {"input": account}})
    body = response.json()
    payload = (body.get("data") or {}).get("accountRegister")
    if payload is None:
        return f"HTTP {response.status_code}: {body.get('errors')}"
    return payload["user"]["email"] if payload["user"] else ",".join(e["code"] for e in payload["userErrors"])


async def test_registrations_hash_their_passwords_with_no_pooled_connection_held(
    flood_app: FastAPI, flood_client: AsyncClient
) -> None:
    # when: 30 registrations at once, the last three for addresses the first three take
    with _watching(flood_app) as (_, hash_watch):
        answers = await asyncio.gather(*(_register(flood_client, n) for n in range(30)))

    # then: the duplicates still get ALREADY_EXISTS from the constraint, and no hash ran under a held connection
    assert sorted(answers) == sorted([f"new{n}@example.com" for n in range(27)] + ["ALREADY_EXISTS"] * 3)
    assert len(hash_watch.hashed) >= 10
    assert hash_watch.hashed_while_holding == set()
