"""The in-process counters of the rate and cost limits (no REDIS_URL): counted, expired, swept, no task each."""

import asyncio
import time

from api.limits import ProcessStorage


async def test_an_increment_counts_within_its_window_and_a_refund_takes_back() -> None:
    storage = ProcessStorage()
    assert await storage.incr("cost/ip:1/7", 60, amount=30) == 30
    assert await storage.incr("cost/ip:1/7", 60, amount=12) == 42
    assert await storage.incr("cost/ip:1/7", 60, amount=-12) == 30
    assert await storage.incr("cost/ip:2/7", 60) == 1  # another client's counter is its own
    assert await storage.get("cost/ip:1/7") == 30


async def test_a_counter_past_its_expiry_starts_again() -> None:
    storage = ProcessStorage()
    await storage.incr("requests/ip:1/7", 60, amount=5)
    storage.expirations["requests/ip:1/7"] = time.time() - 1
    assert await storage.incr("requests/ip:1/7", 60, amount=2) == 2
    assert storage.expirations["requests/ip:1/7"] > time.time() + 50


async def test_an_increment_starts_no_task() -> None:
    storage = ProcessStorage()
    before = len(asyncio.all_tasks())
    for client in range(100):
        await storage.incr(f"requests/ip:{client}/7", 60)
    assert len(asyncio.all_tasks()) == before
    assert storage.timer is None  # MemoryStorage's expiry task was never started


async def test_counters_past_their_expiry_are_swept_when_the_sweep_is_due() -> None:
    storage = ProcessStorage()
    for client in range(3):
        await storage.incr(f"requests/ip:{client}/7", 60)
    storage.expirations["requests/ip:0/7"] = storage.expirations["requests/ip:1/7"] = time.time() - 1
    await storage.incr("requests/ip:2/7", 60)  # the sweep is not due yet: the expired counters stay
    assert set(storage.storage) == {"requests/ip:0/7", "requests/ip:1/7", "requests/ip:2/7"}
    storage._next_sweep = 0.0
    await storage.incr("requests/ip:2/7", 60)
    assert set(storage.storage) == set(storage.expirations) == {"requests/ip:2/7"}
    assert storage.storage["requests/ip:2/7"] == 3
