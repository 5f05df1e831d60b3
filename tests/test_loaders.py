"""BatchLoader: a primed value costs no future until it is loaded, and behaves as aiodataloader's would."""

import asyncio
from typing import Any

import pytest

from schema.loaders import BatchLoader


class Doubling(BatchLoader[int, int]):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[int]] = []

    async def batch_load_fn(self, keys: list[int]) -> list[int]:
        self.batches.append(keys)
        return [key * 2 for key in keys]


async def test_primed_values_are_loaded_without_a_batch_or_a_future_per_key() -> None:
    loader = Doubling()
    for key in range(1, 251):
        loader.prime(key, -key)
    assert loader._cache == {}  # no future made for a value at hand
    values = loader.load_many(range(1, 251))
    assert values.done()
    assert await values == [-key for key in range(1, 251)]
    assert loader._cache == {}
    assert await loader.load(7) == -7  # a single load makes its future then
    assert list(loader._cache) == [7]
    assert loader.batches == []


async def test_a_mix_of_primed_and_missing_keys_batches_only_the_missing() -> None:
    loader = Doubling()
    loader.prime(1, 100)
    assert await loader.load_many([1, 2, 3]) == [100, 4, 6]
    assert loader.batches == [[2, 3]]


async def test_prime_keeps_the_value_held_first_and_clear_forgets_a_primed_value() -> None:
    loader = Doubling()
    assert await loader.load(5) == 10
    loader.prime(5, 0).prime(6, 60).prime(6, 0)  # a held key is not changed, loaded or primed
    assert await loader.load_many([5, 6]) == [10, 60]
    loader.prime(8, 80)
    loader.clear(8)
    assert await loader.load(8) == 16
    loader.prime(9, 90)
    loader.clear_all()
    assert await loader.load(9) == 18
    assert loader.batches == [[5], [8], [9]]


async def test_a_primed_error_is_raised_by_its_load() -> None:
    loader = Doubling()
    loader.prime(3, LookupError("gone"))  # type: ignore[arg-type]  # aiodataloader caches an error as a rejection
    with pytest.raises(LookupError, match="gone"):
        await loader.load(3)
    with pytest.raises(LookupError, match="gone"):
        await asyncio.wait_for(loader.load_many([3, 4]), 5)


def test_a_loader_mapping_its_keys_is_refused() -> None:
    # BatchLoader looks keys up as they are: a subclass with its own cache keys would miss its primed values.
    with pytest.raises(TypeError, match="their own cache keys"):

        class Mapping(BatchLoader[str, int]):
            def get_cache_key(self, key: str) -> str:
                return key.lower()


class Gated(BatchLoader[int, int]):
    """Doubles its keys; a batch holding a key in `failing` fails; each batch waits for `gate` first."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.failing = failing
        self.batches: list[list[int]] = []

    async def batch_load_fn(self, keys: list[int]) -> list[int]:
        self.batches.append(keys)
        await self.gate.wait()
        if self.failing & set(keys):
            raise LookupError("the store is gone")
        return [key * 2 for key in keys]


async def _dispatched() -> None:
    """Let the loop run the loaders' scheduled dispatches up to their batch functions."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_keys_queued_together_wake_their_caller_once(monkeypatch: pytest.MonkeyPatch) -> None:
    loader = Gated()
    loop = asyncio.get_running_loop()
    values = loader.load_many(range(1, 51))
    await _dispatched()  # the batch waits at the gate
    assert loader.batches == [list(range(1, 51))]
    scheduled: list[object] = []
    call_soon = loop.call_soon

    def counting(callback: Any, *args: Any, **kwargs: Any) -> asyncio.Handle:
        scheduled.append(callback)
        return call_soon(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon", counting)
    loader.gate.set()
    assert await values == [key * 2 for key in range(1, 51)]
    # gather would have scheduled a callback per key (50); here: the batch's task and one wake-up
    assert len(scheduled) < 5, scheduled


async def test_keys_in_flight_and_keys_queued_now_are_all_waited_for() -> None:
    loader = Gated()
    first = loader.load_many([1, 2])
    await _dispatched()  # keys 1 and 2 are in flight, in a batch of their own
    later = loader.load_many([2, 3, 1, 3, 4])
    await _dispatched()
    assert loader.batches == [[1, 2], [3, 4]]
    assert not later.done()
    loader.gate.set()
    assert await later == [4, 6, 2, 6, 8]
    assert await first == [2, 4]


async def test_a_failed_batch_fails_the_load_and_is_not_cached() -> None:
    loader = Gated(failing=frozenset({3}))
    loader.prime(1, 10)
    values = loader.load_many([1, 2, 3])
    loader.gate.set()
    with pytest.raises(LookupError, match="the store is gone"):
        await values
    loader.failing = frozenset()
    assert await loader.load_many([2, 3]) == [4, 6]  # aiodataloader forgets the failed keys
    assert loader.batches == [[2, 3], [2, 3]]


async def test_a_load_of_a_key_whose_wait_was_cancelled_ends_cancelled_and_does_not_hang() -> None:
    # A task awaiting a loader's future cancels that future when it is cancelled (a timed-out operation),
    # and aiodataloader keeps it cached: a later load_many of that key has nothing left to wake it.
    loader = Gated()
    waiting = asyncio.ensure_future(loader.load(1))
    await _dispatched()
    waiting.cancel()
    await asyncio.sleep(0)
    assert loader._cache[1].cancelled()
    loader.prime(2, 4)
    again = loader.load_many([1, 2])
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(again, 5)
    loader.gate.set()


async def test_a_load_whose_last_key_is_cancelled_by_another_waiter_still_waits_for_the_rest() -> None:
    # given: keys 1 and 2 queued together; another waiter cancels key 2's (shared, cached) future
    loader = Gated()
    values = loader.load_many([1, 2])
    await _dispatched()
    loader._cache[2].cancel()
    await asyncio.sleep(0)

    # when: the batch ends
    loader.gate.set()

    # then: the load ends (cancelled, as key 2 was) once key 1 has its value, and does not hang
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(values, 5)
    assert loader._cache[1].result() == 2
