"""Persisted documents over WebSocket: by hash or `documentId`, and only the manifest's in trusted-documents mode."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from api.persisted import sha256_hex
from api.settings import Settings
from tests.servers import Uvicorn, running_uvicorn

WAIT_SECONDS = 10
TRANSPORT_WS = Subprotocol("graphql-transport-ws")
TRUSTED = "query Trusted { __typename }"
FREE_FORM = "query FreeForm { __typename }"


@pytest.fixture
async def trusted_server(settings: Settings, tmp_path: Path) -> AsyncIterator[Uvicorn]:
    manifest = tmp_path / "trusted-documents.json"
    manifest.write_text(json.dumps({sha256_hex(TRUSTED): TRUSTED}))
    env = {"TRUSTED_DOCUMENTS_ONLY": "true", "TRUSTED_DOCUMENTS_MANIFEST": str(manifest)}
    async with running_uvicorn(settings, log=tmp_path / "server.log", **env) as server:
        yield server


async def _initialised(socket: ClientConnection) -> None:
    await socket.send(json.dumps({"type": "connection_init"}))
    ack = json.loads(await asyncio.wait_for(socket.recv(), WAIT_SECONDS))
    assert ack["type"] == "connection_ack"


async def _answer(socket: ClientConnection, operation_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    await socket.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), WAIT_SECONDS))
        if message.get("id") == operation_id and message["type"] in {"next", "error"}:
            return message


async def test_trusted_mode_runs_manifest_documents_and_refuses_free_form_text_over_websocket(
    trusted_server: Uvicorn,
) -> None:
    # given
    digest = sha256_hex(TRUSTED)
    by_hash = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}

    # when
    async with connect(trusted_server.url.replace("http://", "ws://") + "/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        await _initialised(ws)
        by_id = await _answer(ws, "by-id", {"documentId": f"sha256:{digest}"})
        hashed = await _answer(ws, "by-hash", by_hash)
        trusted_text = await _answer(ws, "text", {"query": TRUSTED})
        free_form = await _answer(ws, "free", {"query": FREE_FORM})
        unknown = await _answer(ws, "unknown", {"documentId": f"sha256:{sha256_hex(FREE_FORM)}"})
        malformed = [
            await _answer(ws, "bad-extensions", {"query": TRUSTED, "extensions": ["not", "an", "object"]}),
            await _answer(ws, "bad-query", {"query": 42}),
        ]
        after = await _answer(ws, "after", {"query": TRUSTED})

    # then
    assert [answer["type"] for answer in (by_id, hashed, trusted_text, after)] == ["next"] * 4
    assert by_id["payload"]["data"] == {"__typename": "Query"}
    assert free_form["type"] == unknown["type"] == "error"
    assert free_form["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
    assert unknown["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert free_form["payload"][0]["extensions"]["requestId"]
    assert [answer["payload"][0]["extensions"]["code"] for answer in malformed] == ["BAD_REQUEST"] * 2
