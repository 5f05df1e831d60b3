"""BatchLoader: a primed value costs no future until it is loaded, and behaves as aiodataloader's would."""

import asyncio
from typing import Any

import pytest
from aiodataloader import DataLoader

from schema.loaders import BatchLoader


class Doubling(BatchLoader[int, int]):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[int]] = []

    async def load_batch(self, keys: list[int]) -> list[int]:
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

    async def load_batch(self, keys: list[int]) -> list[int]:
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
    # given: key 2 asked for by another waiter, then keys 1 and 2 together (each with its own future:
    # key 2 was seen), all in one batch; the other waiter cancels key 2's (shared, cached) future
    loader = Gated()
    other = loader.load(2)
    values = loader.load_many([1, 2])
    await _dispatched()
    assert loader.batches == [[2, 1]]
    other.cancel()
    await asyncio.sleep(0)

    # when: the batch ends
    loader.gate.set()

    # then: the load ends (cancelled, as key 2 was) once key 1 has its value, and does not hang
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(values, 5)
    assert loader._cache[1].result() == 2


async def test_keys_never_seen_are_loaded_as_one_group_without_a_future_per_key() -> None:
    loader = Gated()
    values = loader.load_many([(key * 7) % 50 for key in range(50)])  # any order
    await _dispatched()
    assert loader.batches == [[(key * 7) % 50 for key in range(50)]]
    assert loader._cache == {}  # one future for the group, none per key
    loader.gate.set()
    assert await values == [(key * 7) % 50 * 2 for key in range(50)]
    # kept as primed values: asked for again, they are at hand, without a batch or a future per key
    again = loader.load_many([3, 4])
    assert again.done()
    assert await again == [6, 8]
    assert loader._cache == {}
    assert len(loader.batches) == 1


async def test_groups_and_single_keys_queued_together_share_one_batch() -> None:
    loader = Gated()
    first = loader.load_many([1, 2, 3])
    single = loader.load(10)
    second = loader.load_many([20, 21])
    await _dispatched()
    assert loader.batches == [[1, 2, 3, 10, 20, 21]]
    loader.gate.set()
    assert await first == [2, 4, 6]
    assert await single == 20
    assert await second == [40, 42]


async def test_a_key_of_a_group_in_flight_waits_for_that_group_not_for_a_batch_of_its_own() -> None:
    loader = Gated()
    group = loader.load_many([1, 2, 3])
    await _dispatched()
    alone = loader.load(2)
    overlapping = loader.load_many([3, 4])  # shares a key with the group: each key on its own
    await _dispatched()
    loader.gate.set()
    assert await alone == 4
    assert await overlapping == [6, 8]
    assert await group == [2, 4, 6]
    assert loader.batches == [[1, 2, 3], [4]]
    assert loader.load(2) is alone  # cached as aiodataloader caches a key's future


async def test_a_failed_group_fails_its_loads_and_its_keys_are_loaded_again() -> None:
    loader = Gated(failing=frozenset({2}))
    group = loader.load_many([1, 2])
    await _dispatched()
    alone = loader.load(1)
    loader.gate.set()
    with pytest.raises(LookupError, match="the store is gone"):
        await group
    with pytest.raises(LookupError, match="the store is gone"):
        await alone
    loader.failing = frozenset()
    assert await loader.load_many([2, 3]) == [4, 6]
    assert loader.batches == [[1, 2], [2, 3]]


async def test_a_cancelled_group_leaves_its_keys_to_be_loaded_again() -> None:
    loader = Gated()
    waiting = asyncio.ensure_future(loader.load_many([1, 2]))
    await _dispatched()
    waiting.cancel()  # its operation timed out
    await asyncio.sleep(0)
    loader.gate.set()
    assert await asyncio.wait_for(loader.load_many([1, 2]), 5) == [2, 4]  # not a cancelled future kept
    assert loader.batches == [[1, 2], [1, 2]]


async def test_a_key_cleared_while_its_group_is_in_flight_is_not_kept() -> None:
    loader = Gated()
    group = loader.load_many([1, 2])
    await _dispatched()
    loader.clear(2)  # a write changed it meanwhile
    loader.gate.set()
    assert await group == [2, 4]
    assert await loader.load(1) == 2
    assert await loader.load(2) == 4
    assert loader.batches == [[1, 2], [2]]


async def test_a_group_with_an_error_among_its_values_fails_as_a_whole() -> None:
    class Missing(BatchLoader[int, int]):
        async def load_batch(self, keys: list[int]) -> list[int]:
            return [LookupError(f"no {key}") if key == 2 else key for key in keys]  # type: ignore[misc]

    loader = Missing()
    with pytest.raises(LookupError, match="no 2"):
        await loader.load_many([1, 2, 3])


def test_a_loader_of_its_own_batch_function_is_refused() -> None:
    with pytest.raises(TypeError, match="load_batch"):

        class Own(BatchLoader[int, int]):
            async def batch_load_fn(self, keys: list[int]) -> list[int]:
                return keys


async def test_a_key_cleared_and_grouped_again_belongs_to_its_later_group() -> None:
    loader = Gated()
    first = loader.load_many([1, 2])
    await _dispatched()
    loader.clear(2)
    second = loader.load_many([2, 3])  # 2 is not held now: a group of its own
    await _dispatched()
    assert loader._grouped[2] is not loader._grouped.get(1)
    loader.gate.set()
    assert await first == [2, 4]
    assert await second == [4, 6]
    assert loader.batches == [[1, 2], [2, 3]]
    await asyncio.sleep(0)  # a group's values are kept by its future's callback, run after the await of a done one
    assert loader._grouped == {}
    assert loader.load_many([1, 2, 3]).done()  # every value kept


async def test_a_loader_is_built_as_aiodataloader_builds_one() -> None:
    class Plain(DataLoader[int, int]):
        async def batch_load_fn(self, keys: list[int]) -> list[int]:
            return keys

    plain, ours = Plain(), Doubling()
    assert set(vars(ours)) - {"_primed", "_grouped", "batches"} == set(vars(plain))
    assert ours.loop is plain.loop
    assert (ours.batch, ours.max_batch_size, ours.cache) == (plain.batch, plain.max_batch_size, plain.cache)
    assert ours.get_cache_key(7) == plain.get_cache_key(7) == 7


async def test_a_batch_is_one_task(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    started: list[object] = []
    create_task = loop.create_task

    def counting(coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        started.append(coro)
        return create_task(coro, **kwargs)

    monkeypatch.setattr(loop, "create_task", counting)
    loader = Doubling()
    first, second = loader.load(1), loader.load_many([2, 3])
    assert await first == 2
    assert await second == [4, 6]
    assert loader.batches == [[1, 2, 3]]
    assert len(started) == 1, started  # aiodataloader's own scheduling starts two
