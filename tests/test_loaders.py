"""BatchLoader: a primed value costs no future until it is loaded, and behaves as aiodataloader's would."""

import asyncio

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
