"""Test set-up: one migrated database per xdist worker, one app per test, cleanup after each test.

`TEST_DATABASE_URL` (a PostgreSQL URL) runs the suite on PostgreSQL: each worker creates its
own database on that server and drops it at the end. Without it, each worker gets a SQLite file.
"""

import asyncio
import os
import socket
import sys
import uuid
from asyncio.subprocess import Process
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, make_url, update
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from api.app import create_app
from api.db import create_engine, create_sessionmaker
from api.settings import Settings
from schema.models import metadata

ROOT = Path(__file__).resolve().parent.parent


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
    migrate(rendered)
    yield rendered
    asyncio.run(recreate_postgres_database(server, name, drop_only=True))


@pytest.fixture
def settings(database_url: str) -> Settings:
    # With TEST_REDIS_URL the app keeps its counters in that Redis, under a prefix of its own per test.
    return Settings(
        database_url=database_url,
        redis_url=os.environ.get("TEST_REDIS_URL"),
        redis_key_prefix=f"storefront-test:{uuid.uuid4().hex}",
        # The relay's background loop would check connections out at random moments; the tests
        # that need it call `relay()` or start the loop with a short interval themselves.
        outbox_relay_interval_seconds=3600,
        db_pool_size=5,
        db_max_overflow=5,
        _env_file=None,
    )


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


STARTUP_SECONDS = 30


def free_port() -> int:
    """Return a loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[tuple[str, Process]]:
    """The app under a real uvicorn process on a free loopback port; yields its base URL and process."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": settings.effective_database_url, "LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--port", str(port)),
        "--no-proxy-headers",  # the app believes X-Forwarded-For from TRUSTED_PROXIES only
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(STARTUP_SECONDS * 10):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the server did not start")
        yield base, process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
