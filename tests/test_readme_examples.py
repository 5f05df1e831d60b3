"""README "For frontend developers": every example there runs against a real server and says what it shows.

Shell blocks run in order in one bash session (so `TOKEN=…` set by one is seen by the next), with
the README's http://127.0.0.1:8000 pointed at a real uvicorn on demo data seeded as `make run` does
(a smaller catalog). The `<!-- expect: … -->` comments above a block name text its output must
contain. The JavaScript block (the graphql-ws client) runs under node with the packages of
tests/node, while staff moves the order it follows to PAID.
"""

import asyncio
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from scripts.seed import SeedSize, seed
from tests import factories
from tests.servers import ROOT, Uvicorn
from tests.ws_reference import wait_for_metric

README = ROOT / "README.md"
SECTION = "## For frontend developers"
BLOCK = re.compile(r"((?:<!-- expect: .*? -->\n)*)```(sh|js)\n(.*?)```", re.DOTALL)
EXPECT = re.compile(r"<!-- expect: (.*?) -->")
README_URL = "127.0.0.1:8000"
END_OF_BLOCK = "@@ end of README block @@"
RUN_SECONDS = 60
DEMO_PASSWORD = "storefront-demo"


@dataclass(frozen=True)
class Example:
    language: str
    code: str
    expected: list[str]


def _examples() -> list[Example]:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    section = text[start : text.index("\n## ", start + len(SECTION))]
    return [Example(language, code, EXPECT.findall(comments)) for comments, language, code in BLOCK.findall(section)]


@pytest.fixture
async def demo(db_session: AsyncSession) -> None:
    await seed(db_session, SeedSize(products=30, customers=3, reviews_per_customer=2))
    await db_session.commit()


def _against(code: str, server: Uvicorn) -> str:
    host = server.url.removeprefix("http://")
    return code.replace(f"http://{README_URL}", f"http://{host}").replace(f"ws://{README_URL}", f"ws://{host}")


async def _graphql(server: Uvicorn, query: str, variables: dict[str, Any], token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=RUN_SECONDS) as http:
        answer = await http.post(
            f"{server.url}/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


async def _sign_in(server: Uvicorn, email: str) -> str:
    query = "mutation ($input: TokenCreateInput!) { tokenCreate(input: $input) { accessToken } }"
    data = await _graphql(server, query, {"input": {"email": email, "password": DEMO_PASSWORD}})
    token: str = data["tokenCreate"]["accessToken"]
    return token


def test_the_section_has_examples_of_every_kind() -> None:
    # when
    examples = _examples()

    # then: each example says what it shows, and the section covers what frontends need
    assert len(examples) >= 8
    assert all(example.expected for example in examples)
    code = "\n".join(example.code for example in examples)
    for needle in (
        "userErrors",
        "tokenCreate",
        "ratelimit",
        "If-None-Match",
        "persistedQuery",
        "documentId",
        "Origin:",
    ):
        assert needle in code


async def test_the_shell_examples_run_and_show_what_they_say(live_server: Uvicorn, demo: None) -> None:
    # given
    blocks = [example for example in _examples() if example.language == "sh"]
    script = "\n".join(f"{_against(block.code, live_server)}\necho '{END_OF_BLOCK}'" for block in blocks)

    # when
    result = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )

    # then
    outputs = result.stdout.split(END_OF_BLOCK)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    for block, output in zip(blocks, outputs, strict=False):
        for expected in block.expected:
            assert expected in output, (block.code, output)


async def test_the_websocket_example_follows_an_order_until_staff_moves_it(
    live_server: Uvicorn, demo: None, db_session: AsyncSession, tmp_path: Path
) -> None:
    # given: the demo customer's order, and the README's client as a file beside tests/node's packages
    (example,) = [example for example in _examples() if example.language == "js"]
    product = await factories.create_product(db_session, stock=5)
    await db_session.commit()
    token = await _sign_in(live_server, "customer@example.com")
    placed = await _graphql(
        live_server,
        "mutation ($input: OrderPlaceInput!) { orderPlace(input: $input) { order { id } userErrors { code } } }",
        {"input": {"items": [{"productId": encode_global_id("Product", product.id), "quantity": 1}]}},
        token,
    )
    order_id = placed["orderPlace"]["order"]["id"]
    modules = ROOT / "tests" / "node" / "node_modules"
    assert (modules / "graphql-ws").is_dir(), "run `make node` (npm ci in tests/node)"
    (tmp_path / "node_modules").symlink_to(modules)
    script = tmp_path / "follow-order.mjs"
    script.write_text(_against(example.code, live_server), encoding="utf-8")
    env = {**os.environ, "TOKEN": token, "ORDER_ID": order_id}

    # when
    node = await asyncio.create_subprocess_exec(
        "node", str(script), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        await wait_for_metric(live_server.url, "graphql_subscriptions_active", 1)
        staff = await _sign_in(live_server, "staff@example.com")
        update = (
            "mutation ($input: OrderStatusUpdateInput!) { orderStatusUpdate(input: $input) { userErrors { code } } }"
        )
        moved = await _graphql(live_server, update, {"input": {"orderId": order_id, "status": "PAID"}}, staff)
        stdout, stderr = await asyncio.wait_for(node.communicate(), RUN_SECONDS)
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()

    # then
    assert moved["orderStatusUpdate"]["userErrors"] == []
    assert node.returncode == 0, stderr.decode()
    for expected in example.expected:
        assert expected in stdout.decode()
