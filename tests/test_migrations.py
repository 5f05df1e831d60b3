import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from api.settings import Settings
from domains.tables import metadata
from tests.conftest import recreate_postgres_database
from tests.servers import ROOT


@pytest.fixture
def scratch_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of the suite's kind, used only by this test."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        yield f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"
        return
    name = f"storefront_migrations_{os.getpid()}"
    asyncio.run(recreate_postgres_database(server, name))
    yield Settings(database_url=server).effective_database_url.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(recreate_postgres_database(server, name, drop_only=True))


def _config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    return config


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


def test_migrations_match_the_models_and_downgrade_to_base(scratch_database_url: str) -> None:
    # given
    config = _config(scratch_database_url)

    # when
    command.upgrade(config, "head")
    command.check(config)  # raises when autogenerate finds any difference from the models
    upgraded = asyncio.run(_tables(scratch_database_url))
    command.downgrade(config, "base")
    downgraded = asyncio.run(_tables(scratch_database_url))

    # then
    assert set(metadata.tables) <= upgraded
    assert downgraded <= {"alembic_version"}


def test_migration_history_is_linear() -> None:
    # when
    heads = ScriptDirectory.from_config(_config("sqlite+aiosqlite://")).get_heads()

    # then
    assert len(heads) == 1
