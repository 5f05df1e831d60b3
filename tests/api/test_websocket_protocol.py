"""graphql-transport-ws as its reference client speaks it: text frames, a null init payload, one protocol.

The reference client is the `graphql-ws` npm package (tests/node/ws_client.mjs, installed by
`make node`), run with node against a real uvicorn process.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from api.settings import Settings
from tests.servers import Uvicorn, running_uvicorn
from tests.ws_reference import run_reference_client

WAIT_SECONDS = 10
TRANSPORT_WS = Subprotocol("graphql-transport-ws")
LEGACY_WS = Subprotocol("graphql-ws")
TYPENAME = "query Typename { __typename }"


@pytest.fixture
async def server(settings: Settings, tmp_path: Path) -> AsyncIterator[Uvicorn]:
    """A real server whose sockets must send `connection_init` within one second."""
    async with running_uvicorn(settings, log=tmp_path / "server.log", WS_CONNECTION_INIT_TIMEOUT_SECONDS="1") as up:
        yield up


def _socket_url(server: Uvicorn) -> str:
    return server.url.replace("http://", "ws://") + "/graphql"


async def test_reference_client_runs_an_operation_with_a_null_init_payload(server: Uvicorn) -> None:
    # given: the client sends `"payload": null` in connection_init, as graphql-ws does without params
    operations = [{"id": "a", "query": TYPENAME}]

    # when
    events = await run_reference_client(_socket_url(server), operations, connection_params=None)

    # then: acknowledged, one result and completion; no frame was refused (binary frames would be)
    assert events[0] == {"event": "connected"}
    results = [event for event in events if event.get("id") == "a"]
    assert [event["event"] for event in results] == ["next", "complete"]
    assert results[0]["payload"]["data"] == {"__typename": "Query"}
    assert not [event for event in events if event["event"] == "error"]


async def test_every_server_message_is_a_text_frame(server: Uvicorn) -> None:
    # given
    async with connect(_socket_url(server), subprotocols=[TRANSPORT_WS]) as socket:
        # when
        await socket.send(json.dumps({"type": "connection_init", "payload": None}))
        ack = await asyncio.wait_for(socket.recv(), WAIT_SECONDS)
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": TYPENAME}}))
        frames = [await asyncio.wait_for(socket.recv(), WAIT_SECONDS) for _ in range(2)]

    # then
    assert ack == '{"type":"connection_ack"}'
    assert all(isinstance(frame, str) for frame in frames)
    assert [json.loads(frame)["type"] for frame in frames] == ["next", "complete"]


async def test_a_socket_that_never_initialises_is_closed_at_the_configured_timeout(server: Uvicorn) -> None:
    # given: a socket that sends nothing
    async with connect(_socket_url(server), subprotocols=[TRANSPORT_WS]) as socket:
        # when
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), WAIT_SECONDS)

    # then: 4408, "Connection initialisation timeout" (graphql-transport-ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4408


async def test_the_legacy_protocol_is_refused_by_default(server: Uvicorn) -> None:
    # when: a subscriptions-transport-ws client asks for its sub-protocol only
    with pytest.raises((InvalidStatus, ConnectionClosed)) as refused:
        async with connect(_socket_url(server), subprotocols=[LEGACY_WS]) as socket:
            await asyncio.wait_for(socket.recv(), WAIT_SECONDS)

    # then: no socket speaking it is ever opened (4406: sub-protocol not acceptable)
    error = refused.value
    if isinstance(error, InvalidStatus):
        assert error.response.status_code in {400, 403}
    else:
        assert isinstance(error, ConnectionClosed)
        assert error.rcvd is not None
        assert error.rcvd.code == 4406


async def test_the_legacy_protocol_is_spoken_when_configured(settings: Settings, tmp_path: Path) -> None:
    # given
    async with (
        running_uvicorn(settings, log=tmp_path / "server.log", WS_LEGACY_PROTOCOL="true") as legacy,
        connect(_socket_url(legacy), subprotocols=[LEGACY_WS]) as socket,
    ):
        # when
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        ack = json.loads(await asyncio.wait_for(socket.recv(), WAIT_SECONDS))

    # then
    assert socket.subprotocol == LEGACY_WS
    assert ack["type"] == "connection_ack"
