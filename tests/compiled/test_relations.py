"""A relation field is resolved for every parent of its level at once, and answers as its resolver does.

The compiled path finds a field's `RelationField` (schema/relations.py) in its metadata and calls its
`resolve_all` once per level instead of the field's resolver once per parent; graphql-core calls the
resolver. Both must give the same response, with the same loads.
"""

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import pytest
import strawberry
from aiodataloader import DataLoader
from graphql import ExecutionResult, execute, parse
from graphql.execution.executor import Executor
from strawberry.execution import optimized_is_awaitable
from strawberry.types.nodes import SelectedField

from schema.compiled.extension import _bindings
from schema.compiled.plan import RELATION, PlanCache
from schema.compiled.run import Bail, Run
from schema.relations import LEVEL_BATCHES, ToMany, ToOne, warm_page


@dataclass(frozen=True)
class AuthorRow:
    id: int
    name: str


@dataclass(frozen=True)
class BookRow:
    id: int
    title: str
    author_id: int | None


AUTHORS = {1: AuthorRow(1, "Ada"), 2: AuthorRow(2, "Grace")}
BOOKS = [BookRow(1, "Notes", 1), BookRow(2, "Compilers", 2), BookRow(3, "More notes", 1), BookRow(4, "Anonymous", None)]

AUTHOR: ToOne[BookRow, AuthorRow] = ToOne(
    field="author", loader=lambda loaders: cast(Any, loaders).authors, key_of=lambda row: row.author_id
)
BOOKS_BY_AUTHOR: ToMany[AuthorRow, BookRow] = ToMany(
    field="books", loader=lambda loaders: cast(Any, loaders).books, key_of=lambda row: row.id
)
CALLS = {"author": 0, "books": 0}
_BOOKS = BOOKS_BY_AUTHOR.resolver(key=lambda author: author.id, convert=lambda row: Book.from_row(row))


@strawberry.type
class Author:
    id: int
    name: str

    @staticmethod
    def from_row(row: AuthorRow | None) -> "Author | None":
        return None if row is None else Author(id=row.id, name=row.name)

    @strawberry.field(graphql_type=list["Book"], metadata=_BOOKS.metadata)
    def books(self, info: strawberry.Info) -> Any:
        CALLS["books"] += 1
        return _BOOKS.resolve(info.context.loaders, self)


_AUTHOR = AUTHOR.resolver(key=lambda book: book.author_id, convert=Author.from_row)


@strawberry.type
class Book:
    id: int
    title: str
    author_id: strawberry.Private[int | None]

    @staticmethod
    def from_row(row: BookRow) -> "Book":
        return Book(id=row.id, title=row.title, author_id=row.author_id)

    @strawberry.field(graphql_type=Author | None, metadata=_AUTHOR.metadata)
    def author(self, info: strawberry.Info) -> Any:
        CALLS["author"] += 1
        return _AUTHOR.resolve(info.context.loaders, self)


@strawberry.type
class Query:
    @strawberry.field
    def books(self) -> list[Book]:
        return [Book.from_row(row) for row in BOOKS]


SCHEMA = strawberry.Schema(query=Query)
BINDINGS = _bindings(SCHEMA)
DOCUMENT = "{ books { id title author { name books { title author { id } } } } }"


class Loaders:
    """Counting loaders: each batch's keys are recorded."""

    def __init__(self, *, fail: bool = False) -> None:
        self.batches: list[tuple[str, list[int]]] = []
        self.fail = fail
        self.authors: DataLoader[int, AuthorRow | None] = DataLoader(self._authors)
        self.books: DataLoader[int, list[BookRow]] = DataLoader(self._books)

    async def _authors(self, keys: list[int]) -> list[AuthorRow | None]:
        self.batches.append(("authors", list(keys)))
        if self.fail:
            raise RuntimeError("the database is gone")
        return [AUTHORS.get(key) for key in keys]

    async def _books(self, keys: list[int]) -> list[list[BookRow]]:
        self.batches.append(("books", list(keys)))
        return [[row for row in BOOKS if row.author_id == key] for key in keys]


def _context(loaders: Loaders) -> SimpleNamespace:
    return SimpleNamespace(loaders=loaders)


async def _compiled(loaders: Loaders, plans: PlanCache | None = None) -> dict[str, Any]:
    executor: Any = Executor.build(
        SCHEMA._schema,
        parse(DOCUMENT),
        context_value=_context(loaders),
        is_awaitable=cast(Any, optimized_is_awaitable),
    )
    assert isinstance(executor, Executor)
    root = (plans or PlanCache(maxsize=8)).root(DOCUMENT, executor.operation, executor, BINDINGS)
    return await Run(executor, BINDINGS).execute(root)


async def _graphql_core(loaders: Loaders) -> ExecutionResult:
    result = execute(SCHEMA._schema, parse(DOCUMENT), context_value=_context(loaders))
    assert not isinstance(result, ExecutionResult)
    return await result


async def test_a_relation_field_is_one_load_per_level_and_no_resolver_call() -> None:
    reference_loaders = Loaders()
    reference = await _graphql_core(reference_loaders)
    assert reference.errors is None
    CALLS.update(author=0, books=0)

    loaders = Loaders()
    data = await _compiled(loaders)

    assert data == reference.data
    assert data["books"][3]["author"] is None  # no key: null, and nothing loaded for it
    assert CALLS == {"author": 0, "books": 0}
    # One batch per relation and level, each key once, in the parents' order, as graphql-core loads them.
    assert loaders.batches == [("authors", [1, 2]), ("books", [1, 2])]
    assert loaders.batches == reference_loaders.batches


async def test_the_compiler_marks_relation_fields() -> None:
    executor: Any = Executor.build(SCHEMA._schema, parse(DOCUMENT), context_value=_context(Loaders()))
    root = PlanCache(maxsize=8).root(DOCUMENT, executor.operation, executor, BINDINGS)
    book = root.fields[0].completion.inner
    assert book is not None
    assert book.selection is not None
    kinds = {plan.key: plan.kind for plan in book.selection.fields}
    assert kinds["author"] == RELATION
    assert kinds["title"] != RELATION


async def test_objects_calling_no_resolver_are_filled_at_once_and_relations_still_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Author and Book call no resolver (their fields are plain or relations): each is filled as soon as
    # it is placed, so a level is a batch to wait for, not a depth of the document.
    levels: list[int] = []
    level = Run._level

    async def counted(run: Run, tasks: list[Any]) -> list[Any]:
        levels.append(len(tasks))
        return await level(run, tasks)

    monkeypatch.setattr(Run, "_level", counted)
    loaders = Loaders()
    data = await _compiled(loaders)
    reference = await _graphql_core(Loaders())
    assert data == reference.data
    # The root; the 4 books its resolver gave (a resolver's objects wait for their level), whose
    # authors are loaded and filled at once; then, with no object left to fill, the authors' books
    # (loaded, filled at once) and their authors (held already).
    assert levels == [1, 4, 0, 0]
    assert loaders.batches == [("authors", [1, 2]), ("books", [1, 2])]


async def test_values_a_loader_already_holds_cost_no_batch() -> None:
    loaders = Loaders()
    for key, row in AUTHORS.items():
        loaders.authors.prime(key, row)
    for key in AUTHORS:
        loaders.books.prime(key, [row for row in BOOKS if row.author_id == key])
    data = await _compiled(loaders)
    assert loaders.batches == []
    assert data["books"][0]["author"]["books"][1] == {"title": "More notes", "author": {"id": 1}}


async def test_a_failing_load_gives_the_operation_back_to_graphql_core() -> None:
    with pytest.raises(Bail):
        await _compiled(Loaders(fail=True))
    result = await _graphql_core(Loaders(fail=True))
    assert result.errors is not None
    assert next(error.path for error in result.errors) == ["books", 0, "author"]


JOINED_AUTHOR: ToOne[BookRow, AuthorRow] = ToOne(
    field="author",
    loader=lambda loaders: cast(Any, loaders).authors,
    key_of=lambda row: row.author_id,
    joined=lambda row: None if row.author_id is None else AUTHORS[row.author_id],
)


def _page_info(loaders: Loaders) -> Any:
    """A root connection field's info, as `warm_page` reads it: `{ books { edges { node { author { name } } } } }`."""
    author = SelectedField(name="author", directives={}, arguments={}, selections=[])
    node = SelectedField(name="node", directives={}, arguments={}, selections=[author])
    edges = SelectedField(name="edges", directives={}, arguments={}, selections=[node])
    books = SelectedField(name="books", directives={}, arguments={}, selections=[edges])
    return SimpleNamespace(context=_context(loaders), selected_fields=[books])


async def test_a_page_looks_ahead_under_graphql_core_only() -> None:
    # graphql-core: the look-ahead loads the selected relation for the whole page, in one batch
    loaders = Loaders()
    await warm_page(_page_info(loaders), BOOKS, [AUTHOR])
    assert loaders.batches == [("authors", [1, 2])]

    # compiled: nothing is loaded ahead (each level batches by itself), joined rows are handed on
    loaders = Loaders()
    batching = LEVEL_BATCHES.set(True)
    try:
        await warm_page(_page_info(loaders), BOOKS, [AUTHOR, JOINED_AUTHOR])
    finally:
        LEVEL_BATCHES.reset(batching)
    assert loaders.batches == []
    held = loaders.authors.load(1)
    assert held.done()
    assert held.result() == AUTHORS[1]


async def test_the_compiled_run_batches_levels_only_while_it_runs() -> None:
    assert not LEVEL_BATCHES.get()
    await _compiled(Loaders())
    assert not LEVEL_BATCHES.get()


# A book that may hold its author already (as a review made from a card holds its author): `OneField.held`.
_HELD_AUTHOR = AUTHOR.resolver(
    key=lambda book: book.author_id, convert=Author.from_row, held=lambda book: book.held_author
)


@strawberry.type
class HeldBook:
    id: int
    author_id: strawberry.Private[int | None]
    held_author: strawberry.Private[Author | None]

    @strawberry.field(graphql_type=Author | None, metadata=_HELD_AUTHOR.metadata)
    def author(self, info: strawberry.Info) -> Any:
        return _HELD_AUTHOR.resolve(info.context.loaders, self)


@strawberry.type
class HeldQuery:
    @strawberry.field
    def books(self) -> list[HeldBook]:
        # Books 1 and 2 hold their authors; book 3 only names its author's key, book 4 has none.
        held = {1: Author.from_row(AUTHORS[1]), 2: Author.from_row(AUTHORS[2])}
        return [HeldBook(id=row.id, author_id=row.author_id, held_author=held.get(row.id)) for row in BOOKS]


HELD_SCHEMA = strawberry.Schema(query=HeldQuery)


async def _both(document: str) -> tuple[dict[str, Any], Loaders, ExecutionResult, Loaders]:
    bindings = _bindings(HELD_SCHEMA)
    loaders, reference_loaders = Loaders(), Loaders()
    executor: Any = Executor.build(
        HELD_SCHEMA._schema,
        parse(document),
        context_value=_context(loaders),
        is_awaitable=cast(Any, optimized_is_awaitable),
    )
    root = PlanCache(maxsize=8).root(document, executor.operation, executor, bindings)
    data = await Run(executor, bindings).execute(root)
    result = execute(HELD_SCHEMA._schema, parse(document), context_value=_context(reference_loaders))
    assert not isinstance(result, ExecutionResult)
    return data, loaders, await result, reference_loaders


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The parents (their ids) each call of the held author's `resolve_all` was given."""
    calls: list[str] = []
    resolve_all = type(_HELD_AUTHOR).resolve_all

    def counted(field: Any, loaders: Any, parents: Any, arguments: Any, keys: Any = None) -> Any:
        calls.append(", ".join(str(parent.id) for parent in parents))
        return resolve_all(field, loaders, parents, arguments, keys)

    monkeypatch.setattr(type(_HELD_AUTHOR), "resolve_all", counted)
    return calls


async def test_a_held_related_object_is_placed_with_its_parent_and_the_others_load_in_one_batch(
    resolved: list[str],
) -> None:
    data, loaders, reference, reference_loaders = await _both("{ books { id author { id name } } }")
    assert reference.errors is None
    assert data == reference.data
    assert [book["author"] for book in data["books"]] == [
        {"id": 1, "name": "Ada"},
        {"id": 2, "name": "Grace"},
        {"id": 1, "name": "Ada"},
        None,
    ]
    # Books 1 and 2 placed their authors as they were filled; only books 3 and 4 were resolved as a
    # relation, and only book 3's key was loaded: as graphql-core's resolver, per book, loads it.
    assert resolved == ["3, 4"]
    assert loaders.batches == reference_loaders.batches == [("authors", [1])]


async def test_a_held_object_with_relations_of_its_own_stays_a_relation(resolved: list[str]) -> None:
    data, loaders, reference, _ = await _both("{ books { author { name books { title } } } }")
    assert reference.errors is None
    assert data == reference.data
    # Placed inline, the held authors' books would load a level before book 3's author's: one batch each.
    assert resolved == ["1, 2, 3, 4"]
    assert loaders.batches == [("authors", [1, 2]), ("books", [1, 2])]
