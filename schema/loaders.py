"""Generic per-request batch loaders; each domain names its own subclasses in `loaders.py`.

Each batch takes the request session once (`RequestDb.read()`), so a field selected on N
parents costs one statement, not N.
"""

from asyncio import Future, gather, get_running_loop
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from functools import partial
from typing import Any, Generic, Self, TypeAlias, TypeVar, cast

from aiodataloader import DataLoader, Loader, dispatch_queue
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.keyset import Ordering, Page, PageRequest, to_page
from schema import metrics
from schema.unit_of_work import RequestDb

K = TypeVar("K", bound=Hashable)
RowT = TypeVar("RowT")
V = TypeVar("V")
R = TypeVar("R")
AwaitableOrValue: TypeAlias = R | Awaitable[R]

FetchRows = Callable[[AsyncSession, Sequence[K]], Awaitable[Sequence[RowT]]]
FetchChildren = Callable[[AsyncSession, Sequence[int], Ordering, PageRequest], Awaitable[dict[int, list[RowT]]]]
FetchCounts = Callable[[AsyncSession, Sequence[int]], Awaitable[dict[int, int]]]


class BatchLoader(DataLoader[K, V]):
    """aiodataloader's DataLoader that makes no future for a value it already holds until one is asked for.

    aiodataloader caches a done future per primed key, and `load_many` gathers every key's future
    (asyncio schedules a callback per future even when it is already done). A TopProducts page primes
    250 authors its reviews joined and then loads them all: 250 futures made and 250 looked up for
    values that were at hand. Primed values wait in a plain dict instead; a key's future is made when
    `load` asks for it, and `load_many` of keys that are all at hand answers with one future.

    Nor does a `load_many` of keys it has never seen make a future per key: the keys are queued as
    one group (`_Group`), behind one future, in the same batch as every other key queued meanwhile,
    and their values are kept as primed ones once loaded. A TopProducts page loads 50 products'
    review pages so: 90 µs of loader work per request before, a tenth of it after. A key asked for
    alone while its group is in flight waits for that group (`_member`), not for a batch of its own.

    Subclasses load a batch in `load_batch`. A key is its own cache key (aiodataloader's default):
    none of these loaders maps its keys, so they are looked up as they are, without a call per key.
    """

    def __init__(self) -> None:
        # aiodataloader's `__init__`, less what it checks per instance that holds for every BatchLoader by
        # construction (its `batch_load_fn` is a coroutine method, its keys their own cache keys): a
        # ProductById request builds four loaders, and the coroutine-function check costs more than the
        # rest. tests/test_loaders.py holds the attributes to a DataLoader's.
        self.loop = get_running_loop()
        self.get_cache_key = _same
        self._cache = {}
        self._queue: list[Loader] = []
        self._primed: dict[Hashable, V] = {}
        # The keys of groups queued or in flight, each with its group.
        self._grouped: dict[Hashable, _Group] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for own in ("get_cache_key", "batch_load_fn"):
            if own in cls.__dict__:
                msg = f"{cls.__name__}: a BatchLoader's keys are their own cache keys; its batches are `load_batch`"
                raise TypeError(msg)

    def do_resolve_reject(self, key: K, future: "Future[V]") -> None:
        """Queue the key; the first key queued schedules the batch for the loop's next turn.

        As aiodataloader does, but scheduling the batch's one task directly: aiodataloader schedules a
        task whose only work is to start the batch's task, two tasks per batch.
        """
        self._queue.append(Loader(key=key, future=future))
        if len(self._queue) == 1:
            if self.batch:
                self.loop.call_soon(dispatch_queue, self)
            else:
                dispatch_queue(self)

    async def load_batch(self, keys: list[K]) -> list[V]:
        """Load the values of these keys (each once), in their order."""
        raise NotImplementedError

    async def batch_load_fn(self, keys: list[K]) -> list[V]:
        """aiodataloader's batch: the queued keys, a group standing for all its keys, loaded in one `load_batch`."""
        if not any(key.__class__ is _Group for key in keys):
            return await self.load_batch(keys)
        flat: list[K] = []
        for key in keys:
            if isinstance(key, _Group):
                flat.extend(key.keys)
            else:
                flat.append(key)
        values = await self.load_batch(flat)
        answered: list[Any] = []
        position = 0
        for key in keys:
            if isinstance(key, _Group):
                group_values = values[position : position + len(key.keys)]
                position += len(key.keys)
                failed = next((value for value in group_values if isinstance(value, Exception)), None)
                answered.append(group_values if failed is None else failed)  # an error fails the whole group
            else:
                answered.append(values[position])
                position += 1
        return answered

    def prime(self, key: K, value: V) -> Self:
        if key in self._cache or key in self._primed:
            return self  # as aiodataloader: a key held already is not changed
        if isinstance(value, Exception):
            super().prime(key, value)  # a rejected future, as aiodataloader caches it
        else:
            self._primed[key] = value
        return self

    def load(self, key: K) -> "Future[V]":
        primed = self._primed
        if primed and key in primed:
            super().prime(key, primed.pop(key))
        elif self._grouped and key in self._grouped and key not in self._cache:
            return self._member(key)
        return super().load(key)

    def load_many(self, keys: Iterable[K]) -> "Future[list[V]]":
        keys = list(keys)
        primed = self._primed
        if primed and primed.keys() >= set(keys):
            values: Future[list[V]] = self.loop.create_future()
            values.set_result([primed[key] for key in keys])
            return values
        if keys and not self.max_batch_size and self._unseen(keys):
            return self._group(keys)
        queued = len(self._queue)
        futures = [self.load(key) for key in keys]
        if all(future.done() and not future.cancelled() for future in futures):
            held: Future[list[V]] = self.loop.create_future()
            failed = next((exc for future in futures if (exc := future.exception()) is not None), None)
            if failed is None:
                held.set_result([future.result() for future in futures])
            else:
                held.set_exception(failed)
            return held
        if self.max_batch_size:
            return gather(*futures)  # a queue split into batches is not resolved at once
        return self._all_of(futures, [entry.future for entry in self._queue[queued:]])

    def _unseen(self, keys: list[K]) -> bool:
        """Whether these keys are distinct and none is held, queued or in flight."""
        cache, primed, grouped = self._cache, self._primed, self._grouped
        distinct = set(keys)
        if len(distinct) != len(keys):
            return False
        # A loader's first load holds nothing yet: no key to look up (a page key hashes two objects in Python).
        return not (cache or primed or grouped) or not any(
            key in cache or key in primed or key in grouped for key in distinct
        )

    def _group(self, keys: list[K]) -> "Future[list[V]]":
        """Queue these keys as one group: one future for all their values, settled by the batch that loads them."""
        future: Future[list[V]] = self.loop.create_future()
        group = _Group(keys, future)
        self._grouped.update(dict.fromkeys(keys, group))
        future.add_done_callback(partial(self._settled, group))
        self.do_resolve_reject(cast("K", group), cast("Future[V]", future))  # aiodataloader queues it as one key
        return future

    def _settled(self, group: "_Group", future: "Future[list[V]]") -> None:
        """Keep a loaded group's values as primed ones; a failed or cancelled group's keys are loaded again when asked.

        Only the keys still in this group's hands: a key cleared meanwhile is not kept.
        """
        grouped = self._grouped
        live: list[int] = []
        for index, key in enumerate(group.keys):
            owner = grouped.pop(key, None)
            if owner is group:
                live.append(index)
            elif owner is not None:  # cleared, then grouped again by a later load: that group's
                grouped[key] = owner
        if future.cancelled() or future.exception() is not None:
            return
        values = future.result()
        cache, primed = self._cache, self._primed
        if not cache and not primed and len(live) == len(values):
            primed.update(zip(group.keys, values, strict=True))  # nothing held to keep: all at once
            return
        for index in live:
            key = group.keys[index]
            if key not in cache:
                primed.setdefault(key, values[index])

    def _member(self, key: K) -> "Future[V]":
        """A key's own future, settled with its group (asked for alone while the group is queued or in flight)."""
        group = self._grouped[key]
        member: Future[V] = self.loop.create_future()
        index = group.keys.index(key)

        def settle(done: "Future[list[V]]") -> None:
            if member.done():
                return
            if done.cancelled():
                member.cancel()
            elif (failed := done.exception()) is not None:
                member.set_exception(failed)
            else:
                member.set_result(done.result()[index])

        group.future.add_done_callback(settle)
        self._cache[key] = member  # later loads of the key share it, as aiodataloader's cache does
        return member

    def _all_of(self, futures: "list[Future[V]]", queued: "list[Future[V]]") -> "Future[list[V]]":
        """One future of all these values (or the first failure found), woken once per batch, not per key.

        `gather` wakes once per future: a callback each, each a turn of the event loop (a page of
        50 products' reviews: 50). The futures this call queued are resolved together, in queue
        order, in one pass of aiodataloader's dispatch (values or failure): the last of them stands
        for all. Any other future not done yet (queued before, or in flight) is waited for by itself.
        """
        outer: Future[list[V]] = self.loop.create_future()
        mine = {id(future) for future in queued}
        watched = [
            future
            for future in {id(future): future for future in futures}.values()
            if not future.done() and id(future) not in mine
        ]
        if queued:
            watched.append(queued[-1])
        settle = _AllOf(outer, futures, len(watched) or 1)
        if not watched:  # nothing left to wait for (a future cancelled already): settle now, not never
            settle(None)
        for future in watched:
            future.add_done_callback(settle)
        return outer

    def clear(self, key: K) -> Self:
        self._primed.pop(key, None)
        self._grouped.pop(key, None)
        return super().clear(key)

    def clear_all(self) -> Self:
        self._primed.clear()
        self._grouped.clear()
        return super().clear_all()


def _same(key: Any) -> Any:
    return key


class _Group:
    """The keys of one `BatchLoader.load_many`, queued in aiodataloader's batch as one key, and their future."""

    __slots__ = ("future", "keys")

    def __init__(self, keys: list[Any], future: "Future[list[Any]]") -> None:
        self.keys = keys
        self.future = future


class _AllOf(Generic[V]):
    """The done-callback of `BatchLoader._all_of`: settles `outer` once every watched future is done.

    An object, not a closure: a closure that registers itself again (below) holds itself in its own
    cell, a reference cycle that would keep the request's futures and values for the cyclic collector.
    """

    __slots__ = ("futures", "outer", "remaining")

    def __init__(self, outer: "Future[list[V]]", futures: "list[Future[V]]", remaining: int) -> None:
        self.outer = outer
        self.futures = futures
        self.remaining = remaining

    def __call__(self, _done: "Future[V] | None") -> None:
        self.remaining -= 1
        outer = self.outer
        if self.remaining > 0 or outer.done():
            return
        pending = next((future for future in self.futures if not future.done()), None)
        if pending is not None:  # the last one was cancelled (by another waiter) before its batch ended
            self.remaining = 1
            pending.add_done_callback(self)
            return
        for future in self.futures:
            if future.cancelled():
                outer.cancel()
                return
            failed = future.exception()
            if failed is not None:
                outer.set_exception(failed)
                return
        outer.set_result([future.result() for future in self.futures])


class RowByKeyLoader(BatchLoader[K, RowT | None], Generic[K, RowT]):
    """Load rows by a unique key; a missing (or invisible) row loads as None."""

    def __init__(self, db: RequestDb, fetch: FetchRows[K, RowT], key_of: Callable[[RowT], K]) -> None:
        super().__init__()
        self._db = db
        self._fetch = fetch
        self._key_of = key_of

    async def load_batch(self, keys: list[K]) -> list[RowT | None]:
        metrics.LOADER_BATCH_SIZE.labels(type(self).__name__).observe(len(keys))
        async with self._db.read() as session:
            rows = await self._fetch(session, keys)
        by_key = {self._key_of(row): row for row in rows}
        return [by_key.get(key) for key in keys]


class ChildrenByParentLoader(BatchLoader[int, list[RowT]], Generic[RowT]):
    """Load every child row of each parent (for short, bounded lists)."""

    def __init__(
        self, db: RequestDb, fetch: Callable[[AsyncSession, Sequence[int]], Awaitable[dict[int, list[RowT]]]]
    ) -> None:
        super().__init__()
        self._db = db
        self._fetch = fetch

    async def load_batch(self, keys: list[int]) -> list[list[RowT]]:
        metrics.LOADER_BATCH_SIZE.labels(type(self).__name__).observe(len(keys))
        async with self._db.read() as session:
            by_parent = await self._fetch(session, keys)
        return [by_parent.get(key, []) for key in keys]


PageKey = tuple[int, Ordering, PageRequest]


class PageByParentLoader(BatchLoader[PageKey, Page[RowT]], Generic[RowT]):
    """Load one keyset page of children per parent; parents asking the same page share a statement."""

    def __init__(
        self, db: RequestDb, fetch: FetchChildren[RowT], key_of: Callable[[Ordering], Callable[[Any], tuple[Any, int]]]
    ) -> None:
        super().__init__()
        self._db = db
        self._fetch = fetch
        self._key_of = key_of

    async def load_batch(self, keys: list[PageKey]) -> list[Page[RowT]]:
        metrics.LOADER_BATCH_SIZE.labels(type(self).__name__).observe(len(keys))
        groups: dict[tuple[Ordering, PageRequest], list[int]] = defaultdict(list)
        for parent_id, ordering, page in keys:
            groups[ordering, page].append(parent_id)
        pages: dict[PageKey, Page[RowT]] = {}
        async with self._db.read() as session:
            for (ordering, page), parent_ids in groups.items():
                rows = await self._fetch(session, parent_ids, ordering, page)
                key_of = self._key_of(ordering)
                for parent_id in parent_ids:
                    pages[parent_id, ordering, page] = to_page(rows.get(parent_id, []), ordering, page, key_of)
        return [pages[key] for key in keys]


class CountByParentLoader(BatchLoader[int, int]):
    """Count the children of each parent in one grouped statement."""

    def __init__(self, db: RequestDb, fetch: FetchCounts) -> None:
        super().__init__()
        self._db = db
        self._fetch = fetch

    async def load_batch(self, keys: list[int]) -> list[int]:
        metrics.LOADER_BATCH_SIZE.labels(type(self).__name__).observe(len(keys))
        async with self._db.read() as session:
            counts = await self._fetch(session, keys)
        return [counts.get(key, 0) for key in keys]


def then(future: "Future[V]", convert: Callable[[V], R]) -> AwaitableOrValue[R]:
    """Convert a loader's value now when it has arrived (a prefetch), or once it does.

    Returning a plain value keeps graphql-core on its synchronous path for this field.
    """
    if future.done() and not future.cancelled() and future.exception() is None:
        return convert(future.result())

    async def later() -> R:
        return convert(await future)

    return later()
