"""GraphiQL in a real browser: headless Chromium against the app on a real uvicorn server."""

import asyncio
import shutil
from asyncio.subprocess import Process
from pathlib import Path

import httpx

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=15000",
)


async def test_graphiql_renders_and_introspects_in_a_real_browser(
    live_server: tuple[str, Process], tmp_path: Path
) -> None:
    # given
    base, _ = live_server
    chromium = shutil.which("chromium")
    assert chromium, "Chromium is missing: `make test` installs it (make browser)"

    # when
    browser = await asyncio.create_subprocess_exec(
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        "--dump-dom",
        f"{base}/graphql",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    dom_bytes, _ = await asyncio.wait_for(browser.communicate(), 90)
    async with httpx.AsyncClient(base_url=base) as client:
        metrics = (await client.get("/metrics")).text

    # then
    dom = dom_bytes.decode()
    assert 'class="graphiql-query-editor' in dom
    assert 'class="graphiql-execute-button' in dom
    assert ">Loading...<" not in dom
    # the schema introspection was answered by this server
    assert 'graphql_operations_total{operation="IntrospectionQuery",outcome="ok",type="query"}' in metrics
