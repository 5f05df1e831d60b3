"""Start and stop gunicorn servers the way production runs them (the repo's gunicorn.conf.py)."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from bench.config import LOOPBACK, ROOT, VENV_BIN, BenchConfig
from bench.procs import children_of

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 45.0  # above gunicorn.conf.py's default graceful_timeout (30 s)
LOG_TAIL_CHARS = 4000
GUNICORN_SETTINGS_RECORDED = (
    "wsgi_app",
    "worker_class",
    "workers",
    "max_requests",
    "max_requests_jitter",
    "reuse_port",
    "keepalive",
    "timeout",
    "graceful_timeout",
    "backlog",
    "preload_app",
    "worker_connections",
)


class ServerError(RuntimeError):
    """A server did not start, or died."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """One gunicorn master (and its workers) serving on a loopback port."""

    name: str
    port: int
    process: "subprocess.Popen[bytes]"
    log_path: Path
    log_file: IO[bytes]
    counts_dir: Path  # GUNICORN_REQUEST_COUNTS_DIR: each worker writes its requests served to <pid> (api/worker.py)
    app: str | None  # the wsgi_app given on the command line; None: gunicorn.conf.py's
    environment: dict[str, str]  # what this server's environment adds to the bench's own
    env: dict[str, str]  # the whole environment it runs with

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def master_pid(self) -> int:
        return self.process.pid

    def workers(self) -> list[int]:
        return children_of(self.master_pid)

    def request_counts(self) -> dict[int, int]:
        """Requests served by each worker this server has run (a recycled one keeps its last count)."""
        counts = {}
        for path in self.counts_dir.iterdir():
            if path.name.isdigit():  # not a worker's `.<pid>` being written
                counts[int(path.name)] = int(path.read_text())
        return counts

    def log_tail(self) -> str:
        self.log_file.flush()
        text = self.log_path.read_text(errors="replace")
        return text[-LOG_TAIL_CHARS:]

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise ServerError(
                f"the {self.name} server exited with status {self.process.returncode}; "
                f"its log ({self.log_path}) ends with:\n{self.log_tail()}"
            )

    def wait_ready(self, workers: int) -> None:
        """Wait until every worker has booted and /health answers."""
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                self.check_alive()
                if len(self.workers()) >= workers:
                    try:
                        if client.get(f"{self.url}/health").status_code == httpx.codes.OK:
                            return
                    except httpx.TransportError:
                        pass
                time.sleep(0.2)
        raise ServerError(
            f"the {self.name} server did not answer /health within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL the server's own process group if it lingers."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    print(f"bench: the {self.name} server ignored SIGTERM; killing it", flush=True)
            # Started with start_new_session: its group id is its pid, and holds only its workers.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_S)
        finally:
            self.log_file.close()


def start_server(
    name: str, app: str | None, config: BenchConfig, work_dir: Path, environment: dict[str, str] | None = None
) -> Server:
    """Start gunicorn from the repository root with its gunicorn.conf.py; `app` overrides its wsgi_app.

    Every server gets the same environment and settings but for `environment` (the app's variant).
    """
    port = free_port()
    counts_dir = work_dir / "counts" / name
    shutil.rmtree(counts_dir, ignore_errors=True)
    counts_dir.mkdir(parents=True)
    env = {
        **os.environ,
        "GUNICORN_REQUEST_COUNTS_DIR": str(counts_dir),
        "WEB_CONCURRENCY": str(config.workers),
        "GUNICORN_BIND": f"{LOOPBACK}:{port}",
        "APP_ENV": "development",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": config.database_url,
        "PYTHONUNBUFFERED": "1",
        # wrk is one client on one address: the per-client limits stay on (their cost is measured)
        # but are set past anything the load can reach.
        "GRAPHQL_RATE_LIMIT": "1000000000/minute",
        "COST_BUDGET": "1000000000000/minute",
        **(environment or {}),
    }
    # No control socket: gunicorn would put both servers' (and any other gunicorn's) at one shared
    # default path; it serves no request, so turning it off changes nothing that is measured.
    command = [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "--no-control-socket"]
    if app is not None:
        command.append(app)
    log_dir = work_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log_file = log_path.open("wb")
    try:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError:
        log_file.close()
        raise
    return Server(
        name=name,
        port=port,
        process=process,
        log_path=log_path,
        log_file=log_file,
        counts_dir=counts_dir,
        app=app,
        environment=dict(environment or {}),
        env=env,
    )


def effective_gunicorn_settings(server: Server) -> dict[str, str]:
    """The gunicorn settings a server runs with, as gunicorn resolves them from the same command and environment."""
    command = [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "--print-config"]
    if server.app is not None:
        command.append(server.app)
    completed = subprocess.run(
        command, cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=120, check=False
    )
    settings = {}
    for line in completed.stdout.splitlines():
        key, separator, value = line.partition("=")
        if separator and key.strip() in GUNICORN_SETTINGS_RECORDED:
            settings[key.strip()] = value.strip()
    return settings
