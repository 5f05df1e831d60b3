"""Relations between GraphQL types, each declared once, next to its loader (`schema/<domain>/loaders.py`).

A relation names, in one declaration, what every path through it needs:
- the loader it goes through, and how to find its key in a parent row;
- the rows a parent's statement already joined (`joined`), handed on to that loader so that asking
  for them next costs no statement;
- the look-ahead: the field's name and the relations below it, so a page of parents warms the
  relation for all of them in one batch (`warm`, see schema/lookahead.py for why).

A nested field resolves through its relation, always the same way: it declares its resolver once,
as a `RelationField` (`ToOne.resolver`, `ToMany.resolver`, `PageOf.resolver`) that reads the key
from the GraphQL object and converts the loaded row. graphql-core calls it per parent (`resolve`);
the compiled path (schema/compiled/) finds it in the field's metadata and resolves the field for
every parent of a level at once (`resolve_all`): one `load` per parent, and no resolver call, `Info`
or awaitable per parent. Either answers synchronously when the loader already holds the values
(warmed or joined) and with an awaitable otherwise; graphql-core's cost per awaitable field is what
a large page spends most of its time on.

    _CATEGORY = PRODUCT_CATEGORY.resolver(key=lambda product: product.category_id, convert=Category.from_optional)

    @strawberry.field(description="...", graphql_type=Category | None, metadata=_CATEGORY.metadata)
    def category(self, info: Info) -> AwaitableOrValue[Category | None]:
        return _CATEGORY.resolve(info.context.loaders, self)
"""

from asyncio import Future
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from aiodataloader import DataLoader
from strawberry.types.nodes import Selection

from domains.common.exceptions import BadUserInputError
from domains.common.keyset import Ordering, Page, PageRequest, page_request
from schema.loaders import AwaitableOrValue, PageKey, then
from schema.lookahead import connection_nodes, named, selections
from schema.relay.connection import Connection, NodeType

if TYPE_CHECKING:
    from schema.context import Info, Loaders

Parent = TypeVar("Parent")
Parent_contra = TypeVar("Parent_contra", contravariant=True)
Child = TypeVar("Child")
Out = TypeVar("Out")
# The metadata key under which a relation field's `RelationField` is found by the compiled path.
RELATION_FIELD = "storefront_relation_field"
# The metadata key under which a field's `RowsOf` is found by the compiled path.
ROWS_OF = "storefront_rows_of"
# True while the compiled path runs an operation (schema/compiled/run.py): it loads each relation for
# all the parents of a level in one batch by itself, so a page needs no look-ahead (`warm_page`).
LEVEL_BATCHES: ContextVar[bool] = ContextVar("storefront_level_batches", default=False)


# What a selection below a field may read: each GraphQL field name (aliases aside) it may select,
# with what may be read below that field (None: anything).
Reads = Mapping[str, "Reads | None"]
# Each parent's key, when the caller read them (`Related`); None: the relation reads them from its parents.
Keys = Sequence[Any] | None


class RelationField(Protocol):
    """A relation field's resolver, for one parent or for every parent of a selection level."""

    @property
    def metadata(self) -> dict[str, object]:
        """The Strawberry field metadata that names this resolver to the compiled path."""

    @property
    def narrower(self) -> "Narrower | None":
        """A leaner resolver of the field for the selections that read little enough below it."""

    def resolve_all(
        self, loaders: "Loaders", parents: Sequence[Any], arguments: Mapping[str, Any], keys: Keys = None
    ) -> list[Any] | Awaitable[list[Any]]:
        """The field's value for each parent (given its converted arguments): now when loaded, else awaitable.

        `keys`: each parent's key, read by the caller (the parents are rows, `Related`); else the field reads them.
        """


@dataclass(frozen=True, slots=True)
class Narrower:
    """A relation field's resolver that loads less, for a compiled selection reading no more than `reads`.

    The objects it gives hold only what `reads` lets a selection read (an object may lack an
    attribute a wider selection would read: reading it raises, and the compiled path gives the
    operation back to graphql-core, which resolves the field in full). The compiled path alone
    uses it, decided once per plan (schema/compiled/plan.py); its rows are loaded and cached apart.
    """

    reads: Reads
    field: RelationField


@dataclass(frozen=True, slots=True)
class Leaf:
    """A leaf field read from a row: its `attribute`, through `convert` when given (a global id's encoder)."""

    attribute: str
    convert: Callable[[Any], Any] | None = None


@dataclass(frozen=True, slots=True)
class One:
    """An object field whose fields are read from the same row, by `rows`."""

    rows: "Rows"


@dataclass(frozen=True, slots=True)
class Each:
    """A list field: one object per item of the row's `attribute`, each read by `rows`."""

    attribute: str
    rows: "Rows"


@dataclass(frozen=True, slots=True)
class Related:
    """A relation field (`RelationField`) of a row: resolved with the rows as its parents, each keyed by `key`."""

    key: Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Rows:
    """How the compiled path reads a type's fields straight from the rows a relation loads (`resolve_rows`).

    By GraphQL field name (`__typename` is always readable). A selection reading only these fields is
    filled from the rows as they are: no GraphQL object (a `Review`, its author's `User`, an `Edge`) is
    made for each of them, only the response's dicts. A TopProducts page of 250 reviews made 750 such
    objects to read 1,250 fields off them. Any selection reading more (or a field with arguments) is
    served by the relation's objects as before; which one is decided once per plan
    (schema/compiled/plan.py), and both answer as graphql-core does (tests/compiled/).
    """

    fields: Mapping[str, Leaf | One | Each | Related]


@dataclass(frozen=True, slots=True)
class RowsOf:
    """A field's other resolver, for the compiled path: the rows its value is made of, read by `rows`.

    `resolve` takes the field's `Info` and its converted arguments (by their Python names), as the
    field's own resolver does, and gives (or awaits) what `rows` reads: a root connection's keyset page.
    """

    resolve: Callable[..., Any]
    rows: Rows

    @property
    def metadata(self) -> dict[str, object]:
        return {ROWS_OF: self}


def page_rows(node: Rows) -> Rows:
    """A connection read from its keyset `Page`: its edges and nodes, each node read from its row by `node`.

    No cursor, page info or count: a selection of those is served by the `Connection` object.
    """
    return Rows({"edges": Each("rows", Rows({"node": One(node)})), "nodes": Each("rows", node)})


class Warmable(Protocol[Parent_contra]):
    async def warm(self, loaders: "Loaders", parents: Sequence[Parent_contra], selected: Sequence[Selection]) -> None:
        """Load, for all these parents in one batch, what the selection asks of this relation."""

    def hand_on_joined(self, loaders: "Loaders", parents: Sequence[Parent_contra]) -> None:
        """Hand the rows the parents' statement joined for this relation on to its loader (if it joins any)."""


async def warm(
    loaders: "Loaders", parents: Sequence[Parent], selected: Sequence[Selection], relations: Sequence[Warmable[Parent]]
) -> None:
    """Warm every relation the selection asks of these rows, one batch per relation and level."""
    if parents and selected:
        for relation in relations:
            await relation.warm(loaders, parents, selected)


async def warm_page(info: "Info", rows: Sequence[Parent], relations: Sequence[Warmable[Parent]]) -> None:
    """Ready what the query selects below a page of rows (a root connection's resolver calls it).

    Under graphql-core, the look-ahead warms every selected relation for the whole page, one batch
    per relation and level. The compiled path batches each level by itself: the page's joined rows
    are only handed on to their loaders, and nothing is looked ahead.
    """
    if LEVEL_BATCHES.get():
        for relation in relations:
            relation.hand_on_joined(info.context.loaders, rows)
        return
    await warm(info.context.loaders, rows, connection_nodes(selections(info)), relations)


def fixed_order(ordering: Ordering) -> Callable[..., tuple[Ordering, PageRequest]]:
    """`PageOf.resolver`'s `page` for a connection with one fixed ordering: only first/after/last/before vary."""

    def page(
        *, first: int | None = None, after: str | None = None, last: int | None = None, before: str | None = None
    ) -> tuple[Ordering, PageRequest]:
        return ordering, page_request(ordering, first=first, after=after, last=last, before=before)

    return page


def in_order(ordering: Ordering) -> Callable[[Mapping[str, Any]], tuple[Ordering, PageRequest]]:
    """`page_of` for a connection with one fixed ordering: only its first/after/last/before vary."""
    page = fixed_order(ordering)

    def page_of(arguments: Mapping[str, Any]) -> tuple[Ordering, PageRequest]:
        return page(**pagination_arguments(arguments))

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

    def resolver(
        self,
        key: Callable[[Any], int | None],
        convert: Callable[[Child | None], Out],
        held: Callable[[Any], Out | None] | None = None,
        rows: Rows | None = None,
    ) -> "OneField[Child, Out]":
        """The resolver of a field through this relation: the key read from the GraphQL object, the row converted.

        `held` reads the related object a GraphQL object may have been made with (`OneField.held`);
        `rows` reads its fields from the row (`Rows`), as `convert` makes them.
        """
        return OneField(self, key, convert, held, rows=rows)

    def hand_on_joined(self, loaders: "Loaders", parents: Sequence[Parent]) -> None:
        if self.joined is not None:
            self.hand_on(self.loader(loaders), parents)

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

    def resolver(self, key: Callable[[Any], int], convert: Callable[[Child], Out]) -> "ManyField[Child, Out]":
        """The resolver of a field through this relation: the key read from the GraphQL object, each row converted."""
        return ManyField(self, key, convert)

    def hand_on_joined(self, loaders: "Loaders", parents: Sequence[Parent]) -> None:
        """Nothing: no statement joins a list of children."""

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
        return then(
            self.pages(loaders).load((key, ordering, page)), lambda rows: self.connection(loaders, key, rows, convert)
        )

    def connection(
        self, loaders: "Loaders", key: int, rows: Page[Child], convert: Callable[[Child], NodeType]
    ) -> Connection[NodeType]:
        """The parent's loaded page as its connection; its total is counted only when selected."""

        def count() -> Awaitable[int]:
            return self.counts(loaders).load(key)

        return Connection.from_page(rows, convert, count)

    def resolver(
        self,
        key: Callable[[Any], int],
        page: Callable[..., tuple[Ordering, PageRequest]],
        convert: Callable[[Child], NodeType],
        narrower: Narrower | None = None,
        rows: Rows | None = None,
    ) -> "PageOfField[Child, NodeType]":
        """The resolver of a connection field through this relation.

        `page` validates the field's arguments (by their Python names, each with its default) into
        the ordering and page to load; `key` reads the parent's key from the GraphQL object. `rows`
        reads a node's fields from its row (`Rows`), as `convert` makes them.
        """
        return PageOfField(self, key, page, convert, narrower, None if rows is None else page_rows(rows))

    def hand_on_joined(self, loaders: "Loaders", parents: Sequence[Parent]) -> None:
        """Nothing: no statement joins a list of children."""

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


@dataclass(frozen=True, slots=True)
class OneField(Generic[Child, Out]):
    """`ToOne.resolver`: a field naming one related object, or null without a key."""

    relation: ToOne[Any, Child]
    key: Callable[[Any], int | None]
    convert: Callable[[Child | None], Out]
    # The related object a parent already holds (made with it from a joined row), else None: no load.
    held: Callable[[Any], Out | None] | None = None
    narrower: Narrower | None = None
    # How the compiled path reads the related object's fields from its row, if it may (`Rows`).
    rows: Rows | None = None

    @property
    def metadata(self) -> dict[str, object]:
        return {RELATION_FIELD: self}

    def resolve(self, loaders: "Loaders", parent: Any) -> AwaitableOrValue[Out] | None:
        if self.held is not None and (held := self.held(parent)) is not None:
            return held
        return self.relation.resolve(loaders, self.key(parent), self.convert)

    def resolve_all(
        self, loaders: "Loaders", parents: Sequence[Any], arguments: Mapping[str, Any], keys: Keys = None
    ) -> list[Any] | Awaitable[list[Any]]:
        if self.held is not None and keys is None:
            held = [self.held(parent) for parent in parents]
            if all(value is not None for value in held):
                return held
        return self._loaded(loaders, parents, keys, self.convert)

    def resolve_rows(
        self, loaders: "Loaders", parents: Sequence[Any], arguments: Mapping[str, Any], keys: Keys = None
    ) -> list[Any] | Awaitable[list[Any]]:
        """Each parent's related row (None without a key, or for a missing row): now when loaded, else awaitable."""
        return self._loaded(loaders, parents, keys, None)

    def _loaded(
        self,
        loaders: "Loaders",
        parents: Sequence[Any],
        keys: Keys,
        convert: Callable[[Child | None], Any] | None,
    ) -> list[Any] | Awaitable[list[Any]]:
        if keys is None:
            keys = [self.key(parent) for parent in parents]

        def each(rows: list[Child | None]) -> list[Any]:
            found = iter(rows)
            if convert is None:
                return [None if key is None else next(found) for key in keys]
            return [None if key is None else convert(next(found)) for key in keys]

        return then(self.relation.loader(loaders).load_many([key for key in keys if key is not None]), each)


@dataclass(frozen=True, slots=True)
class ManyField(Generic[Child, Out]):
    """`ToMany.resolver`: a field listing every related object."""

    relation: ToMany[Any, Child]
    key: Callable[[Any], int]
    convert: Callable[[Child], Out]
    narrower: Narrower | None = None

    @property
    def metadata(self) -> dict[str, object]:
        return {RELATION_FIELD: self}

    def resolve(self, loaders: "Loaders", parent: Any) -> AwaitableOrValue[list[Out]]:
        return self.relation.resolve(loaders, self.key(parent), self.convert)

    def resolve_all(
        self, loaders: "Loaders", parents: Sequence[Any], arguments: Mapping[str, Any], keys: Keys = None
    ) -> list[Any] | Awaitable[list[Any]]:
        convert = self.convert
        if keys is None:
            keys = [self.key(parent) for parent in parents]
        return then(
            self.relation.loader(loaders).load_many(list(keys)),
            lambda lists: [[convert(row) for row in rows] for rows in lists],
        )


@dataclass(frozen=True, slots=True)
class PageOfField(Generic[Child, NodeType]):
    """`PageOf.resolver`: a connection of related objects, one keyset page per parent."""

    relation: PageOf[Any, Child]
    key: Callable[[Any], int]
    page: Callable[..., tuple[Ordering, PageRequest]]
    convert: Callable[[Child], NodeType]
    narrower: Narrower | None = None
    # How the compiled path reads a connection's fields from its page (`page_rows`), if it may.
    rows: Rows | None = None

    @property
    def metadata(self) -> dict[str, object]:
        return {RELATION_FIELD: self}

    def resolve(self, loaders: "Loaders", parent: Any, **arguments: Any) -> AwaitableOrValue[Connection[NodeType]]:
        ordering, page = self.page(**arguments)
        return self.relation.resolve(loaders, self.key(parent), ordering, page, self.convert)

    def resolve_all(
        self, loaders: "Loaders", parents: Sequence[Any], arguments: Mapping[str, Any], keys: Keys = None
    ) -> list[Any] | Awaitable[list[Any]]:
        ordering, page = self.page(**arguments)
        relation, convert, pages = self.relation, self.convert, self.relation.pages(loaders)
        if keys is None:
            keys = [self.key(parent) for parent in parents]
        return then(
            pages.load_many([(key, ordering, page) for key in keys]),
            lambda loaded: [
                relation.connection(loaders, key, rows, convert) for key, rows in zip(keys, loaded, strict=True)
            ],
        )

    def resolve_rows(
        self, loaders: "Loaders", parents: Sequence[Any], arguments: Mapping[str, Any], keys: Keys = None
    ) -> list[Any] | Awaitable[list[Any]]:
        """Each parent's page of rows, as `rows` reads them: now when loaded, else awaitable."""
        ordering, page = self.page(**arguments)
        if keys is None:
            keys = [self.key(parent) for parent in parents]
        loaded = self.relation.pages(loaders).load_many([(key, ordering, page) for key in keys])
        return then(loaded, _as_they_are)


def _as_they_are(values: list[Any]) -> list[Any]:
    return values
