"""The request body limit: a declared length over it is refused unread, a streamed body as soon as it passes it."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from api.app import create_app
from api.middleware import BodyLimitMiddleware
from api.observability import EdgeMiddleware
from api.settings import DEFAULT_MAX_BODY_BYTES, Settings
from tests.servers import Uvicorn

CHUNK = 64 * 1024
JSON = {"Content-Type": "application/json"}
SMALL_LIMIT = 200
WAIT_SECONDS = 10


class Chunks:
    """A request body sent in chunks, counting how many the server pulled."""

    def __init__(self, count: int, size: int = CHUNK) -> None:
        self.count, self.size, self.pulled = count, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.pulled += 1
            yield b" " * self.size


def _query_of_length(length: int) -> bytes:
    """A valid GraphQL request body padded with JSON whitespace to exactly `length` bytes."""
    body = b'{"query": "{ __typename }"}'
    return body + b" " * (length - len(body))


@pytest.fixture
async def small_client(settings: Settings) -> AsyncIterator[AsyncClient]:
    app = create_app(settings.model_copy(update={"max_body_bytes": SMALL_LIMIT}))
    async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        yield http


async def test_a_declared_length_over_the_limit_is_refused_without_reading_the_body(client: AsyncClient) -> None:
    # given
    body = Chunks(count=32)

    # when
    response = await client.post(
        "/graphql",
        content=body,
        headers={**JSON, "Content-Length": str(32 * CHUNK), "X-Request-ID": "big-1"},
    )

    # then
    assert response.status_code == 413
    assert response.json() == {
        "errors": [
            {
                "message": f"The request body is larger than the limit of {DEFAULT_MAX_BODY_BYTES} bytes.",
                "extensions": {"code": "PAYLOAD_TOO_LARGE", "requestId": "big-1"},
            }
        ]
    }
    assert body.pulled == 0


async def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit(client: AsyncClient) -> None:
    # given: 4 MiB without Content-Length (chunked), 1 MiB allowed
    body = Chunks(count=64)

    # when
    response = await client.post("/graphql", content=body, headers=JSON)

    # then: refused at the chunk that crossed 1 MiB, not after reading all 64
    assert response.status_code == 413
    assert [error["extensions"]["code"] for error in response.json()["errors"]] == ["PAYLOAD_TOO_LARGE"]
    assert body.pulled == DEFAULT_MAX_BODY_BYTES // CHUNK + 1


async def test_a_body_of_exactly_the_limit_is_served_and_one_byte_more_is_not(small_client: AsyncClient) -> None:
    # when
    at_limit = await small_client.post("/graphql", content=_query_of_length(SMALL_LIMIT), headers=JSON)
    declared_over = await small_client.post("/graphql", content=_query_of_length(SMALL_LIMIT + 1), headers=JSON)
    streamed_over = await small_client.post("/graphql", content=Chunks(count=3, size=70), headers=JSON)
    streamed_at = await small_client.post("/graphql", content=Chunks(count=2, size=100), headers=JSON)

    # then
    assert at_limit.json()["data"] == {"__typename": "Query"}
    assert declared_over.status_code == 413
    assert streamed_over.status_code == 413
    assert streamed_at.status_code == 400  # within the limit: read whole, then refused as not JSON


async def _read_everything(scope: Scope, receive: Receive, send: Send) -> None:
    """A plain ASGI app that reads the whole body before answering, outside any FastAPI route."""
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def test_a_body_read_outside_a_route_is_answered_413_and_never_becomes_a_500() -> None:
    # given: the exception middleware outside the limit, as create_app orders them
    app = EdgeMiddleware(BodyLimitMiddleware(_read_everything, max_bytes=SMALL_LIMIT))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        # when
        over = await http.post("/", content=Chunks(count=3, size=100))
        within = await http.post("/", content=Chunks(count=2, size=100))

    # then
    assert over.status_code == 413
    assert over.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert within.status_code == 204


async def test_a_real_server_answers_413_while_the_chunked_body_is_still_arriving(
    live_server: Uvicorn,
) -> None:
    # given
    base = live_server.url
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n"

    # when: one chunk past the limit, and the body never finished (no terminating 0-length chunk)
    writer.write(head.encode())
    for _ in range(DEFAULT_MAX_BODY_BYTES // CHUNK + 1):
        writer.write(chunk)
        await writer.drain()
    try:
        status_line = await asyncio.wait_for(reader.readline(), WAIT_SECONDS)
    finally:
        writer.close()
        await writer.wait_closed()

    # then
    assert status_line.startswith(b"HTTP/1.1 413 ")


async def test_a_small_content_length_beside_a_chunked_body_is_refused_by_the_server(live_server: Uvicorn) -> None:
    # given: a declared length within the limit, which the app trusts, and a chunked body past it
    url = urlsplit(live_server.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
        "Content-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n"

    # when
    writer.write(head.encode() + chunk * (DEFAULT_MAX_BODY_BYTES // CHUNK + 1) + b"0\r\n\r\n")
    try:
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), WAIT_SECONDS)
    except ConnectionResetError:
        status_line = b""  # refused before it read everything: as good as a 400
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()

    # then: the server refuses the request's framing; the app never sees a body longer than declared
    assert status_line == b"" or status_line.startswith(b"HTTP/1.1 400 "), status_line


async def test_a_websocket_message_over_the_limit_closes_the_connection_with_1009(
    live_server: Uvicorn,
) -> None:
    # given: uvicorn's own cap (16 MiB by default) is higher, so the app's is what answers
    base = live_server.url
    socket_url = base.replace("http://", "ws://") + "/graphql"
    padded_init = {"type": "connection_init", "payload": {"padding": "x" * (DEFAULT_MAX_BODY_BYTES // 2)}}
    too_big = {"type": "connection_init", "payload": {"padding": "x" * DEFAULT_MAX_BODY_BYTES}}

    # when
    async with connect(socket_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as socket:
        await socket.send(json.dumps(padded_init))
        accepted = json.loads(await asyncio.wait_for(socket.recv(), WAIT_SECONDS))
    async with connect(socket_url, subprotocols=[Subprotocol("graphql-transport-ws")], max_size=None) as socket:
        await socket.send(json.dumps(too_big))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), WAIT_SECONDS)

    # then
    assert accepted == {"type": "connection_ack"}
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
