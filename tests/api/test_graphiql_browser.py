"""GraphiQL in a real browser: headless Chromium, driven over the DevTools protocol, against a real uvicorn server.

The page runs under its Content-Security-Policy (api/graphiql.py). A listener installed before any
page script records every `securitypolicyviolation`, and the console's errors are collected too.
"""

import asyncio
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.servers import Uvicorn

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)
WAIT_SECONDS = 60
STOP_SECONDS = 10
RECORD_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`);
});
"""
EDITOR_READY = (
    "!!document.querySelector('.graphiql-execute-button')"
    " && !!document.querySelector('.graphiql-query-editor .CodeMirror')?.CodeMirror"
)
RUN_QUERY = """
document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue('{ __typename }');
document.querySelector('.graphiql-execute-button').click();
"""
RESPONSE_TEXT = "document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror?.getValue() || ''"
INJECT_INLINE_SCRIPT = """
const script = document.createElement('script');
script.textContent = 'window.injectedScriptRan = true;';
document.body.appendChild(script);
"""


class DevTools:
    """A DevTools-protocol session with one page: commands in order, every event kept."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.events: list[dict[str, Any]] = []
        self._last_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and return its result; events that arrive meanwhile are kept."""
        self._last_id += 1
        await self.socket.send(json.dumps({"id": self._last_id, "method": method, "params": params}))
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.socket.recv(), WAIT_SECONDS))
            if message.get("id") == self._last_id:
                assert "error" not in message, message["error"]
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)

    async def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (the protocol is not subject to the page's CSP) and return its value."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, (expression, result["result"].get("description"))
        return result["result"].get("value")

    async def wait_for(self, expression: str) -> Any:
        """Evaluate an expression until it is truthy; return that value."""
        for _ in range(WAIT_SECONDS * 5):
            if value := await self.evaluate(expression):
                return value
            await asyncio.sleep(0.2)
        pytest.fail(f"timed out waiting for {expression}; console errors: {self.console_errors()}")

    def console_errors(self) -> list[str]:
        """The console's error messages and uncaught exceptions so far."""
        errors = []
        for event in self.events:
            params = event.get("params", {})
            if event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"]["text"])
            elif event.get("method") == "Runtime.consoleAPICalled" and params["type"] == "error":
                errors.append(" ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"]))
            elif event.get("method") == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"]["text"])
        return errors


async def _page_socket_url(profile: Path) -> str:
    port_file = profile / "DevToolsActivePort"
    for _ in range(WAIT_SECONDS * 10):
        if port_file.is_file() and len(port_file.read_text().splitlines()) >= 2:  # the port, then the path
            break
        await asyncio.sleep(0.1)
    port = int(port_file.read_text().splitlines()[0])
    async with httpx.AsyncClient() as client:
        targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
    page_url: str = next(target for target in targets if target["type"] == "page")["webSocketDebuggerUrl"]
    return page_url


@pytest.fixture
async def devtools(tmp_path: Path) -> AsyncIterator[DevTools]:
    """Headless Chromium on about:blank, in a process group of its own, and a DevTools session with its page."""
    chromium = shutil.which("chromium")
    assert chromium, "Chromium is missing: `make test` installs it (make browser)"
    profile = tmp_path / "profile"
    browser = await asyncio.create_subprocess_exec(
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        async with connect(await _page_socket_url(profile), max_size=None) as socket:
            yield DevTools(socket)
    finally:
        os.killpg(browser.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(browser.wait(), STOP_SECONDS)
        except TimeoutError:
            os.killpg(browser.pid, signal.SIGKILL)
            await browser.wait()


async def _run_query(devtools: DevTools) -> str:
    # A click that lands while GraphiQL is still busy with the schema it just loaded can be lost on
    # a loaded machine: click again until the response editor shows an answer.
    for _ in range(WAIT_SECONDS // 5):
        await devtools.evaluate(RUN_QUERY)
        for _ in range(25):
            if text := await devtools.evaluate(RESPONSE_TEXT):
                return str(text)
            await asyncio.sleep(0.2)
    pytest.fail(f"GraphiQL never showed an answer; console errors: {devtools.console_errors()}")


async def _open_graphiql(devtools: DevTools, base: str) -> None:
    for domain in ("Page", "Runtime", "Log"):
        await devtools.call(f"{domain}.enable")
    await devtools.call("Page.addScriptToEvaluateOnNewDocument", source=RECORD_CSP_VIOLATIONS)
    await devtools.call("Page.navigate", url=f"{base}/graphql")
    await devtools.wait_for(EDITOR_READY)


async def test_graphiql_runs_a_query_in_a_real_browser_without_a_csp_violation(
    live_server: Uvicorn, devtools: DevTools
) -> None:
    # given
    base = live_server.url

    # when: the page loads, introspects the schema, and runs a query from its editor
    await _open_graphiql(devtools, base)
    answer = json.loads(await _run_query(devtools))
    violations = await devtools.evaluate("window.cspViolations")
    async with httpx.AsyncClient(base_url=base) as client:
        metrics = (await client.get("/metrics")).text

    # then
    assert answer["data"] == {"__typename": "Query"}
    assert violations == []
    assert devtools.console_errors() == []
    assert await devtools.evaluate("document.body.innerText.includes('Loading...')") is False
    # the schema introspection was answered by this server
    assert 'graphql_operations_total{operation="IntrospectionQuery",outcome="ok",type="query"}' in metrics


async def test_graphiql_policy_blocks_an_inline_script_the_page_did_not_ship(
    live_server: Uvicorn, devtools: DevTools
) -> None:
    # given
    base = live_server.url
    await _open_graphiql(devtools, base)

    # when: something (an injected payload) adds an inline script of its own
    await devtools.evaluate(INJECT_INLINE_SCRIPT)
    violations = await devtools.wait_for("window.cspViolations.length && window.cspViolations")

    # then
    assert await devtools.evaluate("window.injectedScriptRan === true") is False
    assert violations == ["script-src-elem blocked inline"]
