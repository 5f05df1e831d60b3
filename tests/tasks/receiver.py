"""A webhook receiver: a real HTTP server on loopback (uvicorn, in the test's loop) that records what it gets.

It answers from a script of statuses (then 200), can hold requests until released, and counts
deliveries as a receiver following Standard Webhooks would: once per `webhook-id`.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from starlette.types import Receive, Scope, Send

from tests.servers import free_port

WAIT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # the loop's clock


@dataclass
class Receiver:
    url: str = ""
    statuses: list[int] = field(default_factory=list)  # answered in order; 200 once they run out
    hold: asyncio.Event | None = None  # while set to an unset event, requests wait for it
    requests: list[Received] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {name.decode(): value.decode() for name, value in scope["headers"]}
        self.requests.append(Received(headers, body, asyncio.get_running_loop().time()))
        self._arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    @property
    def webhook_ids(self) -> set[str]:
        """What a receiver deduplicating by `webhook-id` counts as delivered."""
        return {request.headers["webhook-id"] for request in self.requests}

    async def wait_for(self, count: int, *, within: float = WAIT_SECONDS) -> list[Received]:
        """Wait until at least `count` requests arrived; fail after `within` seconds."""
        async with asyncio.timeout(within):
            while len(self.requests) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.requests


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """Serve a Receiver on a free loopback port for as long as the block runs."""
    receiver = Receiver()
    port = free_port()
    config = uvicorn.Config(receiver, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}/hooks"
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        server.should_exit = True
        await task
