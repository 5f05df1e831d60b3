"""`orderStatusChanged` under gunicorn with two workers on one Redis: a change committed on one worker
reaches the subscribers of both, through one Redis subscription per process (not one per client).

Which worker accepts a connection is the kernel's choice; to make it the test's, the other worker is
paused (SIGSTOP) while the connection is made, and resumed right after.
"""

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from api.settings import Settings
from tests.auth import Account
from tests.gunicorn_process import Server, connections_per_worker, paused, running_gunicorn, workers
from tests.orders.subscriptions import STATUS_ONLY, SUBSCRIPTIONS, bearer_params, follow, move, order_of, socket_url
from tests.ws_reference import Line, ReferenceClient, metric, reference_client, wait_for_metric

PER_WORKER = 8
DELIVERY_SECONDS = 1.0
CHECKED_OUT = "db_pool_checked_out"
TASKS = "asyncio_tasks"
SOCKETS_OPEN = "graphql_websockets_open"
SAMPLE_SECONDS = 0.5


def _received(client: ReferenceClient) -> list[str]:
    return [line["payload"]["data"]["orderStatusChanged"]["status"] for line in client.of("mine", "next")]


async def _numsub(redis_url: str, channel: str) -> dict[bytes | str, int]:
    redis = Redis.from_url(redis_url)
    try:
        return dict(await redis.pubsub_numsub(channel))
    finally:
        await redis.aclose()


async def _move_on(server: Server, worker: int, staff: Account, order_id: str) -> None:
    # The change is committed by `worker`: the other one is paused while the request is served.
    (other,) = [pid for pid in await workers(server) if pid != worker]
    with paused(other):
        await move(server.url, staff, order_id, "PAID")


def _events(lines: list[Line]) -> int:
    return len([line for line in lines if line.get("event") == "next"])


async def test_a_change_on_one_worker_reaches_the_subscribers_of_both_within_a_second(
    redis_settings: Settings, tmp_path: Path, db_session: AsyncSession, customer: Account, staff: Account
) -> None:
    # given: two workers on one Redis channel; the customer follows their order on sockets of each
    order_id = await order_of(db_session, customer)
    prefix = f"{redis_settings.redis_key_prefix}:ws"  # deleted with the test's prefix at teardown
    assert redis_settings.redis_url is not None
    redis_env = {"REDIS_URL": redis_settings.redis_url, "REDIS_KEY_PREFIX": prefix}
    operations, params = [follow("mine", order_id, take=1)], bearer_params(customer)
    async with running_gunicorn(redis_settings, tmp_path, **redis_env) as server, AsyncExitStack() as clients:
        first, second = await workers(server)
        url = socket_url(server.url)
        with paused(second):
            on_first = await clients.enter_async_context(reference_client(url, operations, params, sockets=PER_WORKER))
            await wait_for_metric(server.url, SUBSCRIPTIONS, PER_WORKER)
        with paused(first):
            on_second = await clients.enter_async_context(reference_client(url, operations, params, sockets=PER_WORKER))
            await wait_for_metric(server.url, SUBSCRIPTIONS, 2 * PER_WORKER)
        per_worker = connections_per_worker(server)
        subscribed = await _numsub(redis_settings.redis_url, f"{prefix}:events")

        # when: the change is committed on the second worker
        started = time.monotonic()
        await _move_on(server, second, staff, order_id)
        await on_first.until(lambda lines: _events(lines) == PER_WORKER)
        elapsed = time.monotonic() - started
        await on_second.until(lambda lines: _events(lines) == PER_WORKER)

    # then: the first worker's subscribers got the second worker's change within a second, as did the
    # second's own; each worker holds one Redis subscription, whatever its number of clients
    assert per_worker == {first: PER_WORKER, second: PER_WORKER}
    assert subscribed == {f"{prefix}:events".encode(): 2}
    assert _received(on_first) == _received(on_second) == ["PAID"] * PER_WORKER
    assert elapsed < DELIVERY_SECONDS


ORDERS = 25  # each moved twice: a burst of 50 status events
SOCKETS = 200


async def _burst(server: Server, staff: Account, order_ids: list[str]) -> None:
    # Five staff at once: a burst, without making the embedded SQLite's single writer the subject.
    staff_at_once = asyncio.Semaphore(5)

    async def walk(order_id: str) -> None:
        async with staff_at_once:
            await move(server.url, staff, order_id, "PAID")
            await move(server.url, staff, order_id, "SHIPPED")

    await asyncio.gather(*(walk(order_id) for order_id in order_ids))


def _summarised(lines: list[Line]) -> bool:
    return len([line for line in lines if "received" in line]) == SOCKETS // 2 * ORDERS


@pytest.mark.alone
async def test_two_hundred_subscribers_each_receive_every_event_of_a_burst_in_order_holding_no_connection(
    redis_settings: Settings, tmp_path: Path, db_session: AsyncSession, customer: Account, staff: Account
) -> None:
    # given: 200 sockets, half on each worker, each following the customer's 25 orders
    order_ids = [await order_of(db_session, customer) for _ in range(ORDERS)]
    prefix = f"{redis_settings.redis_key_prefix}:ws"  # deleted with the test's prefix at teardown
    assert redis_settings.redis_url is not None
    env = {"REDIS_URL": redis_settings.redis_url, "REDIS_KEY_PREFIX": prefix, "WS_MAX_SUBSCRIPTIONS": str(ORDERS)}
    operations = [follow(f"order-{n}", order_id, take=2, query=STATUS_ONLY) for n, order_id in enumerate(order_ids)]
    params = bearer_params(customer)
    async with running_gunicorn(redis_settings, tmp_path, **env) as server, AsyncExitStack() as stack:
        first, second = await workers(server)
        idle_before = await metric(server.url, CHECKED_OUT)
        groups = []
        for busy, half in ((second, 1), (first, 2)):
            with paused(busy):
                client = reference_client(
                    socket_url(server.url), operations, params, sockets=SOCKETS // 2, summary=True
                )
                groups.append(await stack.enter_async_context(client))
                await wait_for_metric(server.url, SUBSCRIPTIONS, half * SOCKETS // 2 * ORDERS)
        await asyncio.sleep(2 * SAMPLE_SECONDS)  # the pool gauges are sampled twice a second
        idle_with_subscribers = await metric(server.url, CHECKED_OUT)

        # when: a burst of 50 status changes
        await _burst(server, staff, order_ids)
        summaries = [line for group in groups for line in await group.until(_summarised) if "received" in line]

    # then: every socket received both changes of every order, in order; idle sockets held no connection
    assert len(summaries) == SOCKETS * ORDERS
    statuses = {tuple(data["orderStatusChanged"]["status"] for data in line["received"]) for line in summaries}
    assert statuses == {("PAID", "SHIPPED")}
    assert idle_with_subscribers <= idle_before


async def test_disconnected_clients_leave_no_socket_subscription_task_or_redis_subscription_behind(
    redis_settings: Settings, tmp_path: Path, db_session: AsyncSession, customer: Account
) -> None:
    # given: two workers, idle, with their baselines
    order_id = await order_of(db_session, customer)
    prefix = f"{redis_settings.redis_key_prefix}:ws"  # deleted with the test's prefix at teardown
    assert redis_settings.redis_url is not None
    env = {"REDIS_URL": redis_settings.redis_url, "REDIS_KEY_PREFIX": prefix}
    channel = f"{prefix}:events"
    async with running_gunicorn(redis_settings, tmp_path, **env) as server:
        await workers(server)
        await asyncio.sleep(2 * SAMPLE_SECONDS)
        tasks_before = await metric(server.url, TASKS)
        subscribed_before = await _numsub(redis_settings.redis_url, channel)

        # when: 40 sockets subscribe, then all disconnect at once (the client is killed)
        async with reference_client(
            socket_url(server.url), [follow("mine", order_id)], bearer_params(customer), sockets=40
        ):
            await wait_for_metric(server.url, SUBSCRIPTIONS, 40)
            tasks_during = await metric(server.url, TASKS)

        # then: sockets, subscriptions and tasks return to their baselines; Redis still has one subscriber a worker
        await wait_for_metric(server.url, SUBSCRIPTIONS, 0)
        await wait_for_metric(server.url, SOCKETS_OPEN, 0)
        # At most the baseline: a periodic task (the outbox relay's run) alive when the baseline was sampled
        # may be gone now; a task left by a closed socket would keep the count above it.
        await wait_for_metric(server.url, TASKS, tasks_before, at_most=True)
        subscribed_after = await _numsub(redis_settings.redis_url, channel)

    assert tasks_during > tasks_before
    assert subscribed_before == subscribed_after == {channel.encode(): 2}
