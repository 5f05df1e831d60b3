"""Relations between GraphQL types, each declared once, next to its loader (`schema/<domain>/loaders.py`).

A relation names, in one declaration, what every path through it needs:
- the loader it goes through, and how to find its key in a parent row;
- the rows a parent's statement already joined (`joined`), handed on to that loader so that asking
  for them next costs no statement;
- the look-ahead: the field's name and the relations below it, so a page of parents warms the
  relation for all of them in one batch (`warm`, see schema/lookahead.py for why).

A nested field resolves through its relation, always the same way:

    @strawberry.field(description="...", graphql_type=Category | None)
    def category(self, info: Info) -> AwaitableOrValue[Category | None]:
        return PRODUCT_CATEGORY.resolve(info.context.loaders, self.category_id, Category.from_optional)

`resolve` answers synchronously when the loader already holds the value (warmed or joined) and
with an awaitable otherwise; graphql-core's cost per awaitable field is what a large page spends
most of its time on.
"""

from asyncio import Future
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from aiodataloader import DataLoader
from strawberry.types.nodes import Selection

from domains.common.exceptions import BadUserInputError
from domains.common.keyset import Ordering, Page, PageRequest, page_request
from schema.loaders import AwaitableOrValue, PageKey, then
from schema.lookahead import connection_nodes, named
from schema.relay.connection import Connection, NodeType

if TYPE_CHECKING:
    from schema.context import Loaders

Parent = TypeVar("Parent")
Parent_contra = TypeVar("Parent_contra", contravariant=True)
Child = TypeVar("Child")
Out = TypeVar("Out")


class Warmable(Protocol[Parent_contra]):
    async def warm(self, loaders: "Loaders", parents: Sequence[Parent_contra], selected: Sequence[Selection]) -> None:
        """Load, for all these parents in one batch, what the selection asks of this relation."""


async def warm(
    loaders: "Loaders", parents: Sequence[Parent], selected: Sequence[Selection], relations: Sequence[Warmable[Parent]]
) -> None:
    """Warm every relation the selection asks of these rows, one batch per relation and level."""
    if parents and selected:
        for relation in relations:
            await relation.warm(loaders, parents, selected)


def in_order(ordering: Ordering) -> Callable[[Mapping[str, Any]], tuple[Ordering, PageRequest]]:
    """`page_of` for a connection with one fixed ordering: only its first/after/last/before vary."""

    def page_of(arguments: Mapping[str, Any]) -> tuple[Ordering, PageRequest]:
        return ordering, page_request(ordering, **pagination_arguments(arguments))

    return page_of


def pagination_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The Relay pagination arguments among a field's raw arguments, as `page_request` takes them."""

    def number(value: object) -> int | None:
        # Literals arrive as their source text ("5"); variables arrive already coerced (5).
        return None if value is None else int(str(value))

    return {
        "first": number(arguments.get("first")),
        "after": arguments.get("after"),
        "last": number(arguments.get("last")),
        "before": arguments.get("before"),
    }


def _below(fields: Sequence[Any]) -> list[Selection]:
    return [selection for selected_field in fields for selection in selected_field.selections]


@dataclass(frozen=True, slots=True)
class ToOne(Generic[Parent, Child]):
    """A field naming one row by a key the parent holds: `Product.category`, `Review.author`."""

    field: str
    loader: "Callable[[Loaders], DataLoader[int, Child | None]]"
    key_of: Callable[[Parent], int | None]
    joined: Callable[[Parent], Child | None] | None = None
    below: Sequence[Warmable[Child]] = ()

    def load(self, loaders: "Loaders", key: int) -> "Future[Child | None]":
        return self.loader(loaders).load(key)

    @overload
    def resolve(
        self, loaders: "Loaders", key: int, convert: Callable[[Child | None], Out]
    ) -> AwaitableOrValue[Out]: ...

    @overload
    def resolve(
        self, loaders: "Loaders", key: int | None, convert: Callable[[Child | None], Out]
    ) -> AwaitableOrValue[Out] | None: ...

    def resolve(
        self, loaders: "Loaders", key: int | None, convert: Callable[[Child | None], Out]
    ) -> AwaitableOrValue[Out] | None:
        """The related object of the parent whose key this is; None without a key."""
        if key is None:
            return None
        return then(self.loader(loaders).load(key), convert)

    def hand_on(self, loader: DataLoader[int, Child | None], parents: Sequence[Parent]) -> None:
        """Prime the relation's loader with the rows the parents' statement joined."""
        if self.joined is None:
            return
        for parent in parents:
            key, row = self.key_of(parent), self.joined(parent)
            if key is not None and row is not None:
                loader.prime(key, row)

    async def warm(self, loaders: "Loaders", parents: Sequence[Parent], selected: Sequence[Selection]) -> None:
        fields = named(selected, self.field)
        if not fields:
            return
        loader = self.loader(loaders)
        self.hand_on(loader, parents)
        keys = sorted({key for parent in parents if (key := self.key_of(parent)) is not None})
        found = [row for row in await loader.load_many(keys) if row is not None]
        await warm(loaders, found, _below(fields), self.below)


@dataclass(frozen=True, slots=True)
class ToMany(Generic[Parent, Child]):
    """A short, bounded list of child rows per parent: `Category.children`, `Order.items`."""

    field: str
    loader: "Callable[[Loaders], DataLoader[int, list[Child]]]"
    key_of: Callable[[Parent], int]
    below: Sequence[Warmable[Child]] = ()

    def resolve(self, loaders: "Loaders", key: int, convert: Callable[[Child], Out]) -> AwaitableOrValue[list[Out]]:
        """The related objects of the parent whose key this is."""
        return then(self.loader(loaders).load(key), lambda rows: [convert(row) for row in rows])

    async def warm(self, loaders: "Loaders", parents: Sequence[Parent], selected: Sequence[Selection]) -> None:
        fields = named(selected, self.field)
        if not fields:
            return
        lists = await self.loader(loaders).load_many(sorted({self.key_of(parent) for parent in parents}))
        await warm(loaders, [row for rows in lists for row in rows], _below(fields), self.below)


@dataclass(frozen=True, slots=True)
class PageOf(Generic[Parent, Child]):
    """A connection of child rows per parent, paged by keyset: `Product.reviews`, `User.orders`."""

    field: str
    pages: "Callable[[Loaders], DataLoader[PageKey, Page[Child]]]"
    counts: "Callable[[Loaders], DataLoader[int, int]]"
    key_of: Callable[[Parent], int]
    # The ordering and page a field's raw arguments ask for (GraphQL names), as the look-ahead sees them.
    page_of: Callable[[Mapping[str, Any]], tuple[Ordering, PageRequest]]
    below: Sequence[Warmable[Child]] = ()

    def resolve(
        self,
        loaders: "Loaders",
        key: int,
        ordering: Ordering,
        page: PageRequest,
        convert: Callable[[Child], NodeType],
    ) -> AwaitableOrValue[Connection[NodeType]]:
        """One page of the related objects of the parent whose key this is, counted only when asked."""

        def count() -> Awaitable[int]:
            return self.counts(loaders).load(key)

        def connection(rows: Page[Child]) -> Connection[NodeType]:
            return Connection.from_page(rows, convert, count)

        return then(self.pages(loaders).load((key, ordering, page)), connection)

    async def warm(self, loaders: "Loaders", parents: Sequence[Parent], selected: Sequence[Selection]) -> None:
        keys = [self.key_of(parent) for parent in parents]
        for selected_field in named(selected, self.field):
            try:
                ordering, page = self.page_of(selected_field.arguments)
            except (BadUserInputError, KeyError, TypeError, ValueError):
                continue  # the field's own resolver reports bad arguments, at the field's path
            pages = await self.pages(loaders).load_many([(key, ordering, page) for key in keys])
            children = [row for loaded in pages for row in loaded.rows]
            await warm(loaders, children, connection_nodes(selected_field.selections), self.below)
            if named(selected_field.selections, "totalCount"):
                await self.counts(loaders).load_many(keys)
