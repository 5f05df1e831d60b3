"""graphql-transport-ws as its reference client speaks it: text frames, a null init payload, one protocol.

The reference client is the `graphql-ws` npm package (tests/node/ws_client.mjs, installed by
`make node`), run with node against a real uvicorn process.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from api.settings import Settings
from domains.common.ids import encode_global_id
from tests import factories
from tests.auth import Account
from tests.servers import Uvicorn, running_uvicorn
from tests.ws_reference import run_reference_client, wait_for_metric

WAIT_SECONDS = 10
TRANSPORT_WS = Subprotocol("graphql-transport-ws")
LEGACY_WS = Subprotocol("graphql-ws")
TYPENAME = "query Typename { __typename }"
FOLLOW = "subscription Follow($orderId: ID!) { orderStatusChanged(orderId: $orderId) { status } }"


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


@pytest.fixture
async def tight_server(settings: Settings, tmp_path: Path) -> AsyncIterator[Uvicorn]:
    """A real server that pings every 0.2 s and takes one socket, with one operation at a time."""
    limits = {"WS_KEEPALIVE_SECONDS": "0.2", "WS_MAX_SUBSCRIPTIONS": "1", "WS_MAX_CONNECTIONS": "1"}
    async with running_uvicorn(settings, log=tmp_path / "server.log", **limits) as up:
        yield up


async def _acknowledged(socket: ClientConnection) -> None:
    await socket.send(json.dumps({"type": "connection_init"}))
    assert json.loads(await asyncio.wait_for(socket.recv(), WAIT_SECONDS)) == {"type": "connection_ack"}


async def test_the_server_pings_an_idle_socket_and_the_socket_stays_open(tight_server: Uvicorn) -> None:
    # given
    async with connect(_socket_url(tight_server), subprotocols=[TRANSPORT_WS]) as socket:
        await _acknowledged(socket)

        # when: nothing happens for a while
        pings = [json.loads(await asyncio.wait_for(socket.recv(), WAIT_SECONDS)) for _ in range(3)]
        await socket.send(json.dumps({"type": "pong"}))
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": TYPENAME}}))
        answers = [json.loads(await asyncio.wait_for(socket.recv(), WAIT_SECONDS)) for _ in range(3)]

    # then: pings, and the socket still serves operations
    assert pings == [{"type": "ping"}] * 3
    assert {"id": "1", "type": "complete"} in answers


async def test_one_socket_more_than_a_process_takes_is_closed_with_try_again_later(tight_server: Uvicorn) -> None:
    # given: the one socket this process takes
    async with connect(_socket_url(tight_server), subprotocols=[TRANSPORT_WS]) as first:
        await _acknowledged(first)

        # when
        async with connect(_socket_url(tight_server), subprotocols=[TRANSPORT_WS]) as second:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(second.recv(), WAIT_SECONDS)

        # then: 1013; the first socket goes on
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
        await first.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": TYPENAME}}))
        assert json.loads(await asyncio.wait_for(first.recv(), WAIT_SECONDS))["type"] in {"next", "ping"}


@asynccontextmanager
async def _following_an_order(
    server: Uvicorn, db_session: AsyncSession, customer: Account
) -> AsyncIterator[ClientConnection]:
    """A socket of the customer's, acknowledged, following one of their orders as operation "follow"."""
    product = await factories.create_product(db_session)
    order = await factories.create_order(db_session, customer=customer.user, product=product)
    await db_session.commit()
    follow = {"query": FOLLOW, "variables": {"orderId": encode_global_id("Order", order.id)}}
    async with connect(_socket_url(server), subprotocols=[TRANSPORT_WS]) as socket:
        init = {"type": "connection_init", "payload": {"authorization": customer.headers["Authorization"]}}
        await socket.send(json.dumps(init))
        assert json.loads(await asyncio.wait_for(socket.recv(), WAIT_SECONDS)) == {"type": "connection_ack"}
        await socket.send(json.dumps({"id": "follow", "type": "subscribe", "payload": follow}))
        yield socket


async def test_an_operation_over_the_per_socket_limit_gets_an_error_and_the_first_goes_on(
    tight_server: Uvicorn, db_session: AsyncSession, customer: Account
) -> None:
    # given: a socket following an order (one operation in flight: the limit)
    async with _following_an_order(tight_server, db_session, customer) as socket:
        # when: a second operation
        await socket.send(json.dumps({"id": "more", "type": "subscribe", "payload": {"query": TYPENAME}}))
        refusal = await _next_not_ping(socket)

    # then
    assert refusal["id"] == "more"
    assert refusal["type"] == "error"


async def _next_not_ping(socket: ClientConnection) -> dict[str, Any]:
    while (message := json.loads(await asyncio.wait_for(socket.recv(), WAIT_SECONDS)))["type"] == "ping":
        continue
    assert isinstance(message, dict)
    return message


async def test_a_subscription_the_client_completes_ends_on_the_server_and_frees_its_place(
    tight_server: Uvicorn, db_session: AsyncSession, customer: Account
) -> None:
    # given: a socket following an order, at its limit of one operation
    async with _following_an_order(tight_server, db_session, customer) as socket:
        await wait_for_metric(tight_server.url, "graphql_subscriptions_active", 1)

        # when: the client completes it, then runs another operation
        await socket.send(json.dumps({"id": "follow", "type": "complete"}))
        await wait_for_metric(tight_server.url, "graphql_subscriptions_active", 0)
        await socket.send(json.dumps({"id": "next", "type": "subscribe", "payload": {"query": TYPENAME}}))
        answer = await _next_not_ping(socket)

    # then: the subscription ended on the server, and its place went to the next operation
    assert answer["id"] == "next"
    assert answer["type"] == "next"
    assert answer["payload"]["data"] == {"__typename": "Query"}
