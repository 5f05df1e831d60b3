"""A subscriber whose socket is never read is cut off at its queue bound; the others receive everything.

The stalled client reads nothing off its TCP socket (a small receive buffer, and its WebSocket library
stops reading once one frame waits), so the server's sends to it block, its subscription stops
pulling events and its bounded queue overflows. Memory stays bounded, the other subscriber of the
same order keeps receiving every event in order, and once the stalled client reads again it finds
what was already on its way and then the RATE_LIMITED error that ended its subscription; its socket
itself goes on.
"""

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from api.settings import Settings
from domains.common.base import utcnow
from domains.common.outbox import OutboxEvent
from tests.auth import Account
from tests.orders.subscriptions import bearer_params, order_of, socket_url
from tests.servers import running_uvicorn
from tests.ws_reference import metric, wait_for_metric

EVENTS = 3000  # well past what the socket buffers between the server and the stalled client hold
WAIT_SECONDS = 60
TRANSPORT_WS = Subprotocol("graphql-transport-ws")
# Some 1.5 KB per event (one field under 30 aliases, the most allowed; the stalled client turns
# compression off), so that a few thousand events outgrow what the kernel and the server's
# transport buffer hold for a socket nobody reads.
ALIASES = " ".join(f"at{n}: changedAt" for n in range(30))
CHANGED_AT = f"subscription Follow($orderId: ID!) {{ orderStatusChanged(orderId: $orderId) {{ changedAt {ALIASES} }} }}"
DROPPED = "graphql_subscription_events_dropped_total"
SUBSCRIPTIONS = "graphql_subscriptions_active"


@asynccontextmanager
async def subscribed(
    url: str, account: Account, order_id: str, *, stalled: bool = False
) -> AsyncIterator[ClientConnection]:
    """A socket following the order; a stalled one stops reading from the network once a frame waits."""
    sock = None
    if stalled:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        address = urlsplit(url)
        await asyncio.get_running_loop().sock_connect(sock, (address.hostname, address.port))
    async with connect(
        url,
        sock=sock,
        subprotocols=[TRANSPORT_WS],
        max_queue=1 if stalled else 16,
        ping_interval=None,
        compression=None,
    ) as client:
        await client.send(json.dumps({"type": "connection_init", "payload": bearer_params(account)}))
        assert json.loads(await asyncio.wait_for(client.recv(), WAIT_SECONDS))["type"] == "connection_ack"
        subscribe = {"query": CHANGED_AT, "variables": {"orderId": order_id}}
        await client.send(json.dumps({"id": "follow", "type": "subscribe", "payload": subscribe}))
        yield client


async def _read_until(client: ClientConnection, done: Any) -> list[dict[str, Any]]:
    """The operations' messages until `done` says so; the server's keep-alive pings are answered, not kept."""
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT_SECONDS):
        while not messages or not done(messages):
            message = json.loads(await client.recv())
            if message["type"] == "ping":
                await client.send(json.dumps({"type": "pong"}))
            else:
                messages.append(message)
    return messages


# The reader must take 100 events every 0.25 s to keep up, which a loaded machine may not do.
@pytest.mark.alone
async def test_a_socket_that_is_never_read_is_cut_off_at_its_bound_while_the_other_receives_everything(
    settings: Settings, db_session: AsyncSession, customer: Account, tmp_path: Path
) -> None:
    # given: a server whose subscribers hold 256 events each (the default) and whose relay publishes
    # 100 events every 0.25 s; two sockets of the customer follow their order, one of them never read
    order_id = await order_of(db_session, customer)
    # (the task queue's re-drive would handle the same 3000 rows meanwhile: not what this measures)
    server_env = {"OUTBOX_RELAY_INTERVAL_SECONDS": "0.25", "TASK_REDRIVE_INTERVAL_SECONDS": "3600"}
    async with running_uvicorn(settings, log=tmp_path / "server.log", **server_env) as server:
        url = socket_url(server.url)
        async with (
            subscribed(url, customer, order_id, stalled=True) as stalled,
            subscribed(url, customer, order_id) as reader,
        ):
            await wait_for_metric(server.url, SUBSCRIPTIONS, 2)
            dropped_before = await metric(server.url, DROPPED)

            # when: 3000 committed status changes of the order reach the bus (through the outbox relay)
            first = utcnow() - timedelta(days=1)
            db_session.add_all(
                OutboxEvent(
                    topic="OrderStatusChanged",
                    payload={
                        "orderId": order_id,
                        "previousStatus": "PENDING",
                        "status": "PAID",
                        "changedAt": (first + timedelta(seconds=n)).isoformat(),
                    },
                    created_at=first,
                )
                for n in range(EVENTS)
            )
            await db_session.commit()
            received = await _read_until(reader, lambda messages: len(messages) == EVENTS)

            # then: the reader got every event, in order
            assert [message["type"] for message in received] == ["next"] * EVENTS
            stamps = [message["payload"]["data"]["orderStatusChanged"]["changedAt"] for message in received]
            assert [datetime.fromisoformat(stamp) for stamp in stamps] == [
                first + timedelta(seconds=n) for n in range(EVENTS)
            ]

            # and when the stalled socket is read at last: what was on its way, then the error
            stalled_messages = await _read_until(stalled, lambda messages: messages[-1]["type"] == "complete")
            await stalled.send(json.dumps({"id": "after", "type": "subscribe", "payload": {"query": "{ __typename }"}}))
            after = await _read_until(stalled, lambda messages: messages[-1]["type"] == "complete")
            dropped = await metric(server.url, DROPPED) - dropped_before

    # then: it was cut off (far fewer events than were published, every other one counted as dropped)
    # and ended with RATE_LIMITED for that subscription alone; the socket answers its next operation
    *delivered, cut_off, ended = stalled_messages
    assert all(message["type"] == "next" and "errors" not in message["payload"] for message in delivered)
    assert 0 < len(delivered) < EVENTS
    assert dropped == EVENTS - len(delivered)
    assert cut_off["id"] == "follow"
    assert [error["extensions"]["code"] for error in cut_off["payload"]["errors"]] == ["RATE_LIMITED"]
    assert ended == {"id": "follow", "type": "complete"}
    assert [(message["id"], message["type"]) for message in after] == [("after", "next"), ("after", "complete")]
    assert after[0]["payload"]["data"] == {"__typename": "Query"}
