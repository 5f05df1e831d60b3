"""The reference graphql-transport-ws client (`graphql-ws` on node, tests/node/ws_client.mjs) driven from tests."""

import asyncio
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import httpx

from tests.servers import ROOT

NODE_DIR = ROOT / "tests" / "node"
CLIENT_SECONDS = 30
Line = dict[str, Any]


class ReferenceClient:
    """A running client: read what it prints, line by line, as it happens."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[Line] = []

    async def until(self, done: Callable[[list[Line]], bool]) -> list[Line]:
        """Read lines until `done(lines so far)` holds; fail after CLIENT_SECONDS."""
        assert self.process.stdout is not None
        async with asyncio.timeout(CLIENT_SECONDS):
            while not done(self.lines):
                raw = await self.process.stdout.readline()
                assert raw, f"the client ended early: {self.lines}"
                self.lines.append(json.loads(raw))
        return self.lines

    def of(self, operation_id: str, event: str | None = None) -> list[Line]:
        return [line for line in self.lines if line.get("id") == operation_id and event in (None, line["event"])]


def _node() -> str:
    node = shutil.which("node")
    assert node, "Node.js is missing: the reference client runs on it"
    assert (NODE_DIR / "node_modules" / "graphql-ws").is_dir(), "run `make node` (npm ci in tests/node)"
    return node


@asynccontextmanager
async def reference_client(
    url: str,
    operations: list[dict[str, Any]],
    connection_params: dict[str, str] | None = None,
    *,
    sockets: int = 1,
    summary: bool = False,
) -> AsyncIterator[ReferenceClient]:
    """Run the client with these operations on each of `sockets` sockets; stopped (its whole group) on leaving."""
    script = {
        "url": url,
        "connectionParams": connection_params,
        "operations": operations,
        "sockets": sockets,
        "summary": summary,
    }
    process = await asyncio.create_subprocess_exec(
        _node(),
        str(NODE_DIR / "ws_client.mjs"),
        json.dumps(script),
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield ReferenceClient(process)
    finally:
        if process.returncode is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


async def run_reference_client(
    url: str, operations: list[dict[str, Any]], connection_params: dict[str, str] | None = None
) -> list[Line]:
    """Run the client until it exits by itself; return every line it printed."""
    async with reference_client(url, operations, connection_params) as client:
        assert client.process.stdout is not None
        output = await asyncio.wait_for(client.process.stdout.read(), CLIENT_SECONDS)
        assert await client.process.wait() == 0
        return [json.loads(line) for line in output.decode().splitlines()]


async def metric(base_url: str, name: str) -> float:
    """The sum of a metric's samples on the server's /metrics."""
    # Not httpx's 5 s default: a worker taking thousands of subscriptions at once may answer later.
    async with httpx.AsyncClient(timeout=CLIENT_SECONDS) as http:
        text = (await http.get(f"{base_url}/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def wait_for_metric(base_url: str, name: str, value: float, *, at_most: bool = False) -> None:
    """Wait until the server reports `value` for a metric (or no more, `at_most`); poll /metrics."""
    async with asyncio.timeout(CLIENT_SECONDS):
        while True:
            current = await metric(base_url, name)
            if current == value or (at_most and current < value):
                return
            await asyncio.sleep(0.05)
