"""The example clients' tool environments, as `make clients` installs them, and a way to run their programs."""

import json
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import ROOT

TYPESCRIPT_DIR = ROOT / "clients" / "typescript"
PYTHON_DIR = ROOT / "clients" / "python"
CLIENT_PYTHON = PYTHON_DIR / ".venv" / "bin" / "python"
MANIFEST_PATH = ROOT / "examples" / "trusted-documents.json"
TOOL_SECONDS = 120


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(command: Sequence[str | Path], *, cwd: Path, env: Mapping[str, str] | None = None) -> Finished:
    """Run a tool in a session of its own; on a timeout its whole group is killed and the test fails."""
    with subprocess.Popen(  # noqa: S603 - tools of the clients' own environments, with fixed or test-made arguments
        [str(part) for part in command],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=TOOL_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"{command[0]} did not finish in {TOOL_SECONDS} s")
    return Finished(process.returncode, stdout, stderr)


def require_typescript_tools() -> Path:
    """The node_modules of clients/typescript; fail (not skip) when `make clients` has not installed them."""
    modules = TYPESCRIPT_DIR / "node_modules"
    for tool in ("graphql-codegen", "tsc"):
        if not (modules / ".bin" / tool).exists():
            pytest.fail(f"{modules / '.bin' / tool} is missing: run `make clients` (npm ci in clients/typescript)")
    return modules


def require_python_tools() -> Path:
    """The interpreter of clients/python/.venv; fail (not skip) unless `make clients` synced it with its lock."""
    stamp = PYTHON_DIR / ".venv" / "requirements.txt"
    lock = PYTHON_DIR / "requirements.txt"
    if not CLIENT_PYTHON.exists() or not stamp.is_file() or stamp.read_bytes() != lock.read_bytes():
        pytest.fail(f"{PYTHON_DIR / '.venv'} is missing or not synced with {lock.name}: run `make clients`")
    return CLIENT_PYTHON


def trusted_documents() -> dict[str, str]:
    """The committed manifest: {sha256: document}."""
    manifest: dict[str, str] = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    return manifest
