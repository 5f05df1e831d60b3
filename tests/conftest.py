"""Test set-up: one migrated database per xdist worker, one app per test, cleanup after each test.

`TEST_DATABASE_URL` (a PostgreSQL URL) runs the suite on PostgreSQL: each worker creates its
own database on that server and drops it at the end. Without it, each worker gets a SQLite file.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy import delete, make_url, update
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from api.app import create_app
from api.auth.principal import build_token_issuer
from api.db import create_engine, create_sessionmaker
from api.settings import Settings
from domains.common.principal import Role
from domains.tables import metadata
from domains.users import models as users_models
from domains.users import passwords
from domains.users.tokens import TokenIssuer
from tests import factories
from tests.auth import Account, api_key, signed_in
from tests.leftovers import leftovers, seconds_since_boot
from tests.servers import ROOT, Uvicorn, running_uvicorn

_RUN_STARTED = pytest.StashKey[float]()

# A test process forked from one that already hashed a password (mutmut's fork isolation forks each
# mutant's run from the process that ran the whole suite) would inherit a hashing pool whose threads
# did not survive the fork, and every hash would wait for them forever: it builds its own instead.
os.register_at_fork(after_in_child=passwords._executor.cache_clear)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


async def recreate_postgres_database(server_url: str, name: str, *, drop_only: bool = False) -> None:
    admin_url = make_url(Settings(database_url=server_url).effective_database_url).set(database="postgres")
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if not drop_only:
                await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        await engine.dispose()


def migrate(database_url: str) -> None:
    """Bring a database to the head revision with Alembic, as production does."""
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        migrate(url)
        yield url
        return
    name = f"storefront_test_{_worker()}_{os.getpid()}"
    asyncio.run(recreate_postgres_database(server, name))
    server_url = make_url(Settings(database_url=server).effective_database_url)
    rendered = server_url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate(rendered)
        yield rendered
    finally:
        asyncio.run(recreate_postgres_database(server, name, drop_only=True))


@pytest.fixture
async def settings(database_url: str) -> AsyncIterator[Settings]:
    # With TEST_REDIS_URL the app keeps its counters and task queue in that Redis, under a prefix of
    # its own per test, deleted after it.
    test_settings = Settings(
        database_url=database_url,
        redis_url=os.environ.get("TEST_REDIS_URL"),
        redis_key_prefix=f"storefront-test:{uuid.uuid4().hex}",
        # The relay's and the periodic jobs' background loops would check connections out at random
        # moments; the tests that need them call them or start them with a short interval themselves.
        outbox_relay_interval_seconds=3600,
        task_redrive_interval_seconds=3600,
        db_pool_size=5,
        db_max_overflow=5,
        _env_file=None,
    )
    yield test_settings
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        await _delete_keys(url, test_settings.redis_key_prefix)


async def _delete_keys(url: str, prefix: str) -> None:
    redis = Redis.from_url(url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


FALLBACK_REDIS_URL = "redis://127.0.0.1:6379/0"
FALLBACK_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
async def postgres_redis_settings(redis_settings: Settings) -> AsyncIterator[Settings]:
    """The test settings on a PostgreSQL database of this test's own (TEST_DATABASE_URL's server, else this
    machine's) and a real Redis: for the task worker's load tests, which SQLite's single writer cannot carry."""
    server = os.environ.get("TEST_DATABASE_URL", FALLBACK_POSTGRES_URL)
    name = f"storefront_test_{_worker()}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        await recreate_postgres_database(server, name)
    except OSError as exc:
        pytest.fail(f"this test needs PostgreSQL at {server} (set TEST_DATABASE_URL): {exc}")
    url = make_url(Settings(database_url=server).effective_database_url).set(database=name)
    rendered = url.render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(migrate, rendered)  # inside: a migration that fails leaves no database behind
        yield redis_settings.model_copy(update={"database_url": rendered})
    finally:
        await recreate_postgres_database(server, name, drop_only=True)


@pytest.fixture
async def redis_settings(settings: Settings) -> AsyncIterator[Settings]:
    """The test settings on a real Redis (TEST_REDIS_URL, else this machine's): for tests about sharing it."""
    url = os.environ.get("TEST_REDIS_URL", FALLBACK_REDIS_URL)
    probe = Redis.from_url(url)
    try:
        await probe.ping()
    except OSError as exc:
        pytest.fail(f"this test needs Redis at {url} (set TEST_REDIS_URL; .ci/run starts one): {exc}")
    finally:
        await probe.aclose()
    yield settings.model_copy(update={"redis_url": url})
    await _delete_keys(url, settings.redis_key_prefix)


@pytest.fixture
async def db_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session for arranging and inspecting data, outside the app."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            yield session
    finally:
        await engine.dispose()


@pytest.fixture(autouse=True)
async def _clean_tables(settings: Settings) -> AsyncIterator[None]:
    """Delete every row after each test, children first; works with real concurrent transactions."""
    yield
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                # Self-references (the category tree) would refuse a one-statement delete.
                self_refs = {fk.parent.name for fk in table.foreign_keys if fk.column.table is table}
                if self_refs:
                    await connection.execute(update(table).values(dict.fromkeys(self_refs)))
                await connection.execute(delete(table))
    finally:
        await engine.dispose()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as http:
        yield http


@pytest.fixture
def token_issuer(settings: Settings) -> TokenIssuer:
    """The issuer an app built from the test settings trusts; the role fixtures sign in with it."""
    return build_token_issuer(settings)


async def _committed_user(session: AsyncSession, name: str, roles: tuple[str, ...]) -> users_models.User:
    user = await factories.create_user(session, name=name, roles=roles)
    await session.commit()  # the app's own sessions must see it
    return user


@pytest.fixture
async def customer(db_session: AsyncSession, token_issuer: TokenIssuer) -> Account:
    """A signed-in customer (bearer token); `.principal` for service calls."""
    return signed_in(token_issuer, await _committed_user(db_session, "Ann", ("CUSTOMER",)))


@pytest.fixture
async def staff(db_session: AsyncSession, token_issuer: TokenIssuer) -> Account:
    """A signed-in staff member (bearer token); `.principal` for service calls."""
    return signed_in(token_issuer, await _committed_user(db_session, "Sam Staff", ("STAFF",)))


@pytest.fixture
async def admin(db_session: AsyncSession, token_issuer: TokenIssuer) -> Account:
    """A signed-in admin (bearer token); `.principal` for service calls."""
    return signed_in(token_issuer, await _committed_user(db_session, "Ada Admin", ("ADMIN",)))


@pytest.fixture
async def customer_api_key(db_session: AsyncSession) -> Account:
    """A customer calling with an API key of their own (CUSTOMER); `.key` is its row."""
    owner = await _committed_user(db_session, "Kay Customer", ("CUSTOMER",))
    _, caller = await api_key(db_session, owner, roles=(Role.CUSTOMER,))
    await db_session.commit()
    return caller


@pytest.fixture
async def staff_api_key(db_session: AsyncSession) -> Account:
    """An admin's API key narrowed to STAFF: it may do what staff may, and no more."""
    owner = await _committed_user(db_session, "Kim Admin", ("ADMIN",))
    _, caller = await api_key(db_session, owner, roles=(Role.STAFF,))
    await db_session.commit()
    return caller


@pytest.fixture
async def live_server(settings: Settings, tmp_path: Path) -> AsyncIterator[Uvicorn]:
    """The app under a real uvicorn process on a free loopback port, logging to a file of the test's."""
    async with running_uvicorn(settings, log=tmp_path / "server.log") as server:
        yield server


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_RUN_STARTED] = seconds_since_boot()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a process a test started outlived it (checked once, by the controlling process)."""
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the others may still be running their servers
    since = session.config.stash.get(_RUN_STARTED, None)
    if since is None:
        return
    spared = {os.getpid(), *_xdist_workers()}
    found = leftovers(ROOT, since, spared)
    if found:
        listing = "\n".join(f"  {pid}: {command}" for pid, command in sorted(found.items()))
        writer = session.config.get_terminal_writer()
        writer.line()
        writer.line(f"processes started by tests are still running:\n{listing}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _xdist_workers() -> set[int]:
    # Workers are children of this process; they exit with the run but may not have yet.
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    return {int(pid) for pid in children.read_text().split()} if children.exists() else set()
