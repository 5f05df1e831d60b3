"""A relation whose selection reads only what its `Rows` read is filled from the loaded rows, making no objects.

The rows and the objects a relation's `convert` makes must answer the same (graphql-core resolves
the objects); a selection reading anything the rows do not is served by the objects.
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

from schema.compiled.extension import _bindings
from schema.compiled.plan import PlanCache
from schema.compiled.run import Run
from schema.relations import Leaf, One, Rows, ToOne


@dataclass(frozen=True)
class WriterRow:
    id: int
    name: str
    city: str


@dataclass(frozen=True)
class PoemRow:
    id: int
    title: str
    writer_id: int | None


WRITERS = {1: WriterRow(1, "Ada", "London"), 2: WriterRow(2, "Grace", "New York")}
POEMS = [PoemRow(1, "Notes", 1), PoemRow(2, "Loops", 2), PoemRow(3, "Untitled", None), PoemRow(4, "Lost", 9)]
MADE = {"writers": 0}

WRITER: ToOne[PoemRow, WriterRow] = ToOne(
    field="writer", loader=lambda loaders: cast(Any, loaders).writers, key_of=lambda row: row.writer_id
)
WRITER_ROWS = Rows(
    {"id": Leaf("id", lambda pk: f"W{pk}"), "name": Leaf("name"), "home": One(Rows({"city": Leaf("city")}))}
)


@strawberry.type
class Home:
    city: str


@strawberry.type
class Writer:
    id: str
    name: str
    home: Home
    pk: strawberry.Private[int]

    @staticmethod
    def from_row(row: WriterRow | None) -> "Writer | None":
        if row is None:
            return None
        MADE["writers"] += 1
        return Writer(id=f"W{row.id}", name=row.name, home=Home(city=row.city), pk=row.id)

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()


_WRITER = WRITER.resolver(key=lambda poem: poem.writer_id, convert=Writer.from_row, rows=WRITER_ROWS)


@strawberry.type
class Poem:
    id: int
    title: str
    writer_id: strawberry.Private[int | None]

    @strawberry.field(graphql_type=Writer | None, metadata=_WRITER.metadata)
    def writer(self, info: strawberry.Info) -> Any:
        return _WRITER.resolve(info.context.loaders, self)


@strawberry.type
class Query:
    @strawberry.field
    def poems(self) -> list[Poem]:
        return [Poem(id=row.id, title=row.title, writer_id=row.writer_id) for row in POEMS]


SCHEMA = strawberry.Schema(query=Query)
BINDINGS = _bindings(SCHEMA)


class Loaders:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.writers: DataLoader[int, WriterRow | None] = DataLoader(self._writers)

    async def _writers(self, keys: list[int]) -> list[WriterRow | None]:
        self.batches.append(list(keys))
        return [WRITERS.get(key) for key in keys]


async def _both(document: str) -> tuple[dict[str, Any], ExecutionResult, Any, list[list[int]]]:
    """The compiled answer (with how many writers it made), graphql-core's, the writer field's plan, its loads."""
    loaders = Loaders()
    executor: Any = Executor.build(
        SCHEMA._schema,
        parse(document),
        context_value=SimpleNamespace(loaders=loaders),
        is_awaitable=cast(Any, optimized_is_awaitable),
    )
    assert isinstance(executor, Executor)
    root = PlanCache(maxsize=8).root(document, executor.operation, executor, BINDINGS)
    MADE["writers"] = 0
    data = await Run(executor, BINDINGS).execute(root)
    made = MADE["writers"]
    reference = execute(SCHEMA._schema, parse(document), context_value=SimpleNamespace(loaders=Loaders()))
    assert not isinstance(reference, ExecutionResult)
    poem = root.fields[0].completion.inner
    assert poem is not None
    assert poem.selection is not None
    writer = next(plan for plan in poem.selection.fields if plan.nodes[0].name.value == "writer")
    return {"data": data, "made": made}, await reference, writer, loaders.batches


@pytest.mark.parametrize(
    "document",
    [
        "{ poems { id writer { id name } } }",
        "{ poems { writer { __typename w: id ... on Writer { name home { __typename city } } } } }",
        "{ poems { writer { id } again: writer { name } } }",
    ],
)
async def test_a_selection_the_rows_cover_is_read_from_them(document: str) -> None:
    compiled, reference, writer, batches = await _both(document)
    assert reference.errors is None
    assert compiled["data"] == reference.data
    assert compiled["made"] == 0  # no Writer made: read from the rows
    assert writer.rows is not None
    assert writer.completion.selection.from_rows
    assert batches == [[1, 2, 9]]  # one load for the level; a missing row and a poem without one are null
    assert all(poem["writer"] is None for poem in compiled["data"]["poems"][2:])


async def test_a_selection_reading_more_is_served_by_the_objects() -> None:
    compiled, reference, writer, _batches = await _both("{ poems { writer { name shout } } }")  # a resolver
    assert reference.errors is None
    assert compiled["data"] == reference.data
    assert compiled["made"] == 2
    assert writer.rows is None
    assert not writer.completion.selection.from_rows


async def test_rows_and_objects_of_one_relation_side_by_side_load_once() -> None:
    compiled, reference, writer, batches = await _both(
        "{ poems { writer { home { city } pk: id } more: writer { name shout } } }"
    )
    assert reference.errors is None
    assert compiled["data"] == reference.data
    assert compiled["made"] == 2  # for `more` only
    assert writer.rows is not None
    assert batches == [[1, 2, 9]]
