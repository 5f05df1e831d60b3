"""The bench database: create, migrate with Alembic, seed the fixed data set, ANALYZE.

The data set is `scripts.seed` at a fixed size (deterministic: a fixed random seed and natural
keys). A completed load is marked with a comment on the database; a run that finds the
marker, the migration head and the row counts in place skips the load. BENCH_RELOAD=1 forces it.
"""

import asyncio
import random
import time
from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.db import create_engine, create_sessionmaker
from api.settings import Settings
from bench.config import ROOT, BenchConfig
from scripts.seed import DEMO_ACCOUNTS, SeedSize, seed

SIZE = SeedSize(products=20_000, customers=10_000, reviews_per_customer=20)
EXPECTED_PRODUCTS = SIZE.products
EXPECTED_REVIEWS = SIZE.customers * SIZE.reviews_per_customer
EXPECTED_USERS = SIZE.customers + len(DEMO_ACCOUNTS)
MARKER_VERSION = 1
ID_SEQUENCE_SEED = 20261127
ID_SEQUENCE_LENGTH = 20_000


@dataclass(frozen=True, slots=True)
class Dataset:
    """What the bench database holds, and whether this run loaded it."""

    products: int
    published_products: int
    reviews: int
    users: int
    categories: int
    loaded: bool
    load_seconds: float
    postgres_version: str


def _settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, log_level="WARNING", _env_file=None)


def _asyncpg_url(database_url: str) -> str:
    return _settings(database_url).effective_database_url


def _marker() -> str:
    return (
        f"storefront bench data set v{MARKER_VERSION}: products={SIZE.products} customers={SIZE.customers} "
        f"reviews_per_customer={SIZE.reviews_per_customer}, head={_alembic_head()}"
    )


def _alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def _alembic_head() -> str:
    heads = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_heads()
    return ",".join(sorted(heads))


def _admin_engine(config: BenchConfig) -> AsyncEngine:
    url = make_url(_asyncpg_url(config.database_url)).set(database="postgres")
    return create_async_engine(url, isolation_level="AUTOCOMMIT")


async def _is_current(config: BenchConfig) -> bool:
    admin = _admin_engine(config)
    try:
        async with admin.connect() as connection:
            comment = await connection.scalar(
                text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :name"),
                {"name": config.database},
            )
    finally:
        await admin.dispose()
    if comment != _marker():
        return False
    engine = create_async_engine(_asyncpg_url(config.database_url))
    try:
        async with engine.connect() as connection:
            counts = (
                await connection.execute(
                    text(
                        "SELECT (SELECT count(*) FROM product), (SELECT count(*) FROM review), "
                        '(SELECT count(*) FROM "user")'
                    )
                )
            ).one()
    except DBAPIError:
        return False
    finally:
        await engine.dispose()
    return tuple(counts) == (EXPECTED_PRODUCTS, EXPECTED_REVIEWS, EXPECTED_USERS)


async def _recreate(config: BenchConfig) -> None:
    admin = _admin_engine(config)
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{config.database}" WITH (FORCE)')
            await connection.exec_driver_sql(f'CREATE DATABASE "{config.database}"')
    finally:
        await admin.dispose()


async def _seed_and_analyze(config: BenchConfig) -> None:
    engine = create_engine(_settings(config.database_url))
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await seed(session, SIZE)
    finally:
        await engine.dispose()
    admin = create_async_engine(_asyncpg_url(config.database_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql("VACUUM (ANALYZE)")
            # Written last: only a load that went all the way through is marked as complete.
            await connection.exec_driver_sql(f"COMMENT ON DATABASE \"{config.database}\" IS '{_marker()}'")
    finally:
        await admin.dispose()


async def _describe(config: BenchConfig, loaded: bool, load_seconds: float) -> Dataset:
    engine = create_async_engine(_asyncpg_url(config.database_url))
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT (SELECT count(*) FROM product), (SELECT count(*) FROM product WHERE is_published), "
                        '(SELECT count(*) FROM review), (SELECT count(*) FROM "user"), '
                        "(SELECT count(*) FROM category), version()"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    return Dataset(
        products=row[0],
        published_products=row[1],
        reviews=row[2],
        users=row[3],
        categories=row[4],
        loaded=loaded,
        load_seconds=round(load_seconds, 1),
        postgres_version=str(row[5]).split(" on ")[0],
    )


def ensure_dataset(config: BenchConfig) -> Dataset:
    """Make the bench database hold the data set; reload only when needed or asked."""
    started = time.monotonic()
    if not config.reload and asyncio.run(_is_current(config)):
        return asyncio.run(_describe(config, loaded=False, load_seconds=0.0))
    print(f"bench: loading the data set into {config.database} (takes a minute or two) …", flush=True)
    asyncio.run(_recreate(config))
    command.upgrade(_alembic_config(config.database_url), "head")  # runs its own event loop
    asyncio.run(_seed_and_analyze(config))
    dataset = asyncio.run(_describe(config, loaded=True, load_seconds=time.monotonic() - started))
    if (dataset.products, dataset.reviews, dataset.users) != (EXPECTED_PRODUCTS, EXPECTED_REVIEWS, EXPECTED_USERS):
        raise RuntimeError(f"the seeded data set has unexpected sizes: {dataset}")
    return dataset


async def _published_ids(config: BenchConfig) -> list[int]:
    engine = create_async_engine(_asyncpg_url(config.database_url))
    try:
        async with engine.connect() as connection:
            result = await connection.execute(text("SELECT id FROM product WHERE is_published ORDER BY id"))
            return [int(pk) for (pk,) in result.all()]
    finally:
        await engine.dispose()


def product_id_sequence(config: BenchConfig) -> list[int]:
    """The primary keys ProductById asks for, in order: published products, drawn with a fixed seed."""
    published = asyncio.run(_published_ids(config))
    if not published:
        raise RuntimeError("the bench database has no published product")
    rng = random.Random(ID_SEQUENCE_SEED)
    return rng.choices(published, k=ID_SEQUENCE_LENGTH)


async def _max_connections(config: BenchConfig) -> int:
    engine = create_async_engine(_asyncpg_url(config.database_url))
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text("SHOW max_connections"))).scalar_one())
    finally:
        await engine.dispose()


def max_connections(config: BenchConfig) -> int:
    """The PostgreSQL server's max_connections: every server's pools together must stay under it."""
    return asyncio.run(_max_connections(config))
