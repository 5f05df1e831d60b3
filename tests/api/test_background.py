"""Background tasks stop when the app does, even when a cancellation is lost on the way."""

import asyncio

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from api.app import create_app
from api.settings import Settings
from domains.common.background import DEADLINE_RETRY_SECONDS, Deadline, running, stop

HANG = 10  # seconds after which a stop that never ends fails the test instead of hanging it


class Stubborn:
    """Waits for ever, losing its first cancellation as one inside Python 3.11's wait_for can."""

    def __init__(self) -> None:
        self.swallowed = 0

    async def wait(self) -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.swallowed += 1
                if self.swallowed > 1:
                    raise


async def test_a_task_that_swallows_its_cancellation_is_cancelled_again_until_it_ends() -> None:
    # given
    stubborn = Stubborn()
    task = asyncio.create_task(stubborn.wait())
    await asyncio.sleep(0)

    # when
    async with asyncio.timeout(HANG):
        await stop(task)

    # then
    assert task.cancelled()
    assert stubborn.swallowed == 2


async def test_a_task_that_failed_is_stopped_without_raising_into_the_caller() -> None:
    # given
    async def failing() -> None:
        raise RuntimeError("boom")

    # when
    async with running("failing", failing()) as task:
        await asyncio.sleep(0)

    # then
    assert task.done()
    assert isinstance(task.exception(), RuntimeError)


async def test_the_app_stops_at_once_however_soon_after_starting(settings: Settings) -> None:
    # given: apps started and stopped back to back, each with one request in between, so their
    # shutdown cancels the event bus's subscriber while it is still connecting and subscribing
    cycles = 0

    # when: asgi-lifespan fails a shutdown that takes over 5 s
    for _ in range(20):
        app = create_app(settings)
        async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
            assert (await http.get("/health")).status_code == 200
        cycles += 1

    # then
    assert cycles == 20


async def test_a_deadline_whose_cancellation_is_lost_cancels_again_and_raises_timeout_error() -> None:
    # given: a block that swallows its first cancellation
    stubborn = Stubborn()

    # when
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        async with Deadline(0.05):
            await stubborn.wait()
    waited = asyncio.get_running_loop().time() - started

    # then: cancelled twice, a retry after the deadline, and the task is left with no cancellation pending
    assert stubborn.swallowed == 2
    assert waited < DEADLINE_RETRY_SECONDS + 1
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_a_deadline_met_leaves_the_result_and_no_timer_behind() -> None:
    async with Deadline(5) as deadline:
        handle = deadline._handle
        await asyncio.sleep(0)
    assert handle is not None
    assert handle.cancelled()
    assert deadline._handle is None
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
