"""The core and the migrations load without the web stack: checked in a fresh interpreter, by `sys.modules`."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.servers import ROOT

WEB_STACK = ("strawberry", "fastapi", "starlette", "api", "schema")
# Alembic builds its engine with the app's factory and settings; both are plain modules of the edge.
ENGINE_MODULES = {"api", "api.db", "api.settings"}

_REPORT = f"""
import json, sys
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {WEB_STACK!r})))
"""
IMPORT_THE_CORE = (
    """
import importlib, pkgutil
import domains.products.service
import domains
for module in pkgutil.walk_packages(domains.__path__, "domains."):
    importlib.import_module(module.name)
"""
    + _REPORT
)
RUN_THE_MIGRATIONS = (
    """
import sys
from alembic import command
from alembic.config import Config
config = Config("alembic.ini")
config.attributes["database_url"] = sys.argv[1]
config.attributes["configure_logging"] = False
command.upgrade(config, "head")
"""
    + _REPORT
)


def _loaded(program: str, *args: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(  # noqa: S603 - our own interpreter running a program of this file
        [sys.executable, "-c", program, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_every_core_module_loads_no_web_or_graphql_module() -> None:
    # when
    loaded = _loaded(IMPORT_THE_CORE)

    # then
    assert loaded == []


def test_running_the_migrations_loads_neither_strawberry_nor_fastapi(tmp_path: Path) -> None:
    # given
    url = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"

    # when
    loaded = _loaded(RUN_THE_MIGRATIONS, url)

    # then: only the engine factory and the settings of the edge
    assert set(loaded) <= ENGINE_MODULES
    assert (tmp_path / "migrated.db").stat().st_size > 0
