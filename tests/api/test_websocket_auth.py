"""WebSocket authentication by the `connection_init` payload, with a real client against a real server."""

import asyncio
import json

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.auth import Account, bearer
from tests.factories import create_user
from tests.servers import Uvicorn

ME = "{ me { email } }"
PROTOCOL = Subprotocol("graphql-transport-ws")
WAIT_SECONDS = 10


async def _receive(socket: ClientConnection) -> dict[str, object]:
    message = json.loads(await asyncio.wait_for(socket.recv(), WAIT_SECONDS))
    assert isinstance(message, dict)
    return message


async def _ask_me(base: str, payload: dict[str, str] | None) -> list[dict[str, object]]:
    """Open a graphql-transport-ws connection with this init payload, run `me`, return the messages up to `complete`."""
    init: dict[str, object] = (
        {"type": "connection_init"} if payload is None else {"type": "connection_init", "payload": payload}
    )
    async with connect(base.replace("http://", "ws://") + "/graphql", subprotocols=[PROTOCOL]) as socket:
        await socket.send(json.dumps(init))
        assert await _receive(socket) == {"type": "connection_ack"}
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": ME}}))
        messages = [await _receive(socket)]
        while messages[-1]["type"] != "complete":
            messages.append(await _receive(socket))
        return messages


def _without_cost(messages: list[dict[str, object]]) -> list[dict[str, object]]:
    """Drop `extensions.cost` from each result (checked present: every operation reports its cost)."""
    bare: list[dict[str, object]] = []
    for message in messages:
        payload = message.get("payload")
        if isinstance(payload, dict) and "data" in payload:
            assert set(payload.pop("extensions")["cost"]) == {"requested", "remaining", "resetAt"}
        bare.append(message)
    return bare


async def test_websocket_bearer_token_in_connection_init_signs_the_user_in(
    live_server: Uvicorn, app: FastAPI, db_session: AsyncSession
) -> None:
    # given
    base = live_server.url
    user = await create_user(db_session)
    await db_session.commit()
    authorization = bearer(app, user).headers["Authorization"]

    # when
    messages = await _ask_me(base, {"authorization": authorization})

    # then
    assert _without_cost(messages) == [
        {"id": "1", "type": "next", "payload": {"data": {"me": {"email": user.email}}}},
        {"id": "1", "type": "complete"},
    ]


async def test_websocket_api_key_in_connection_init_signs_the_key_owner_in(
    live_server: Uvicorn, customer_api_key: Account
) -> None:
    # given
    base = live_server.url
    owner, caller = customer_api_key.user, customer_api_key

    # when
    messages = await _ask_me(base, {"apiKey": caller.headers["X-API-Key"]})

    # then
    assert _without_cost(messages) == [
        {"id": "1", "type": "next", "payload": {"data": {"me": {"email": owner.email}}}},
        {"id": "1", "type": "complete"},
    ]


async def test_websocket_without_connection_init_payload_is_anonymous(live_server: Uvicorn) -> None:
    # given
    base = live_server.url

    # when
    messages = await _ask_me(base, None)

    # then
    assert _without_cost(messages) == [
        {"id": "1", "type": "next", "payload": {"data": {"me": None}}},
        {"id": "1", "type": "complete"},
    ]


async def test_websocket_with_invalid_bearer_token_is_closed_with_4403_before_any_ack(
    live_server: Uvicorn,
) -> None:
    # given
    base = live_server.url
    init = {"type": "connection_init", "payload": {"authorization": "Bearer not-a-jwt"}}

    # when
    async with connect(base.replace("http://", "ws://") + "/graphql", subprotocols=[PROTOCOL]) as socket:
        await socket.send(json.dumps(init))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), WAIT_SECONDS)

    # then: the first frame the server sends is the close, so it never acknowledged
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
    assert closed.value.rcvd.reason == "Forbidden"


async def test_websocket_with_refused_upgrade_header_and_no_payload_credential_is_closed_with_4403(
    live_server: Uvicorn,
) -> None:
    # given
    base = live_server.url
    headers = {"Authorization": "Bearer not-a-jwt"}

    # when
    async with connect(
        base.replace("http://", "ws://") + "/graphql", subprotocols=[PROTOCOL], additional_headers=headers
    ) as socket:
        await socket.send(json.dumps({"type": "connection_init"}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), WAIT_SECONDS)

    # then
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
