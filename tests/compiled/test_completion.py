"""The compiled run completes values as graphql-core does, on a small schema made for the edge cases.

The storefront's schema has no list of nullable objects and its resolvers return no errors as values,
so the generated fill code's inline placing (schema/compiled/fill.py) is checked here directly:
each document runs through `Run` and through graphql-core on the same schema; a value the compiled
path must not answer (a null where the schema promises an object, an error returned as a value) must
make it give up (`Bail`), and everything else must come out exactly as graphql-core's data.
"""

from collections.abc import Awaitable
from typing import Any, cast

import pytest
import strawberry
from graphql import ExecutionResult, execute, parse
from graphql.execution.executor import Executor
from strawberry.execution import optimized_is_awaitable

from schema.compiled.extension import _bindings
from schema.compiled.plan import PlanCache
from schema.compiled.run import Bail, Run


@strawberry.type
class Item:
    name: str


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Thing(Named):
    size: int


@strawberry.type
class Leaf:
    name: str

    @strawberry.field
    def where(self, info: strawberry.Info) -> str:
        """Its response path, as its resolve info gives it."""
        return ".".join(str(key) for key in info.path.as_list())


@strawberry.type
class Branch:
    label: str
    leaves: list[Leaf]


@strawberry.type
class OtherThing(Named):
    weight: int


class BigThing(Thing):
    """A plain subclass of a Strawberry type: graphql-core places it as a Thing."""


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item | None]:
        return [Item(name="a"), None, Item(name="c")]

    @strawberry.field
    def maybe_items(self) -> list[Item] | None:
        return None

    @strawberry.field
    def required_items(self) -> list[Item]:
        return [Item(name="a"), None]  # type: ignore[list-item]  # a bug the schema must report

    @strawberry.field
    def item(self) -> Item | None:
        return None

    @strawberry.field
    def failing_item(self) -> Item | None:
        return ValueError("returned, not raised")  # type: ignore[return-value]

    @strawberry.field
    async def later_items(self) -> list[Item]:
        return [Item(name="x")]

    @strawberry.field
    def things(self) -> list[Thing | None]:
        return [Thing(name="t", size=1), None]

    @strawberry.field
    def thing(self) -> Thing:
        return Thing(name="u", size=2)

    @strawberry.field
    def big_thing(self) -> Thing:
        return BigThing(name="b", size=3)

    @strawberry.field
    def cast_thing(self) -> Thing:
        # Marked as another type: Strawberry's is_type_of refuses it as a Thing, though its class is Thing.
        return strawberry.cast(OtherThing, Thing(name="c", size=4))

    @strawberry.field
    def other(self) -> OtherThing | None:
        return None

    @strawberry.field
    def branches(self) -> list[Branch]:
        return [Branch(label="x", leaves=[Leaf(name="a"), Leaf(name="b")]), Branch(label="y", leaves=[Leaf(name="c")])]


SCHEMA = strawberry.Schema(query=Query)
IS_AWAITABLE = cast(Any, optimized_is_awaitable)  # Strawberry hands graphql-core the same
PLANS = PlanCache(maxsize=32)


async def _compiled(document: str) -> dict[str, Any]:
    executor: Any = Executor.build(SCHEMA._schema, parse(document), is_awaitable=IS_AWAITABLE, raw_variable_values={})
    assert isinstance(executor, Executor)
    root = PLANS.root(document, executor.operation, executor, _bindings(SCHEMA))
    return await Run(executor, _bindings(SCHEMA)).execute(root)


async def _reference(document: str) -> ExecutionResult:
    result = execute(SCHEMA._schema, parse(document), is_awaitable=IS_AWAITABLE)
    return await result if isinstance(result, Awaitable) else result


@pytest.mark.parametrize(
    "document",
    [
        "{ items { name } }",
        "{ maybeItems { name } }",
        "{ item { name } }",
        "{ laterItems { name } }",
        "{ things { name size __typename } thing { ... on Named { name } size } }",
        "{ a: items { name } b: items { n: name } }",
        "{ bigThing { name size } other { weight } }",
        "{ branches { label leaves { name where } } b: branches { leaves { w: where } } }",
    ],
)
async def test_values_complete_as_graphql_core_completes_them(document: str) -> None:
    reference = await _reference(document)
    assert reference.errors is None
    assert await _compiled(document) == reference.data


@pytest.mark.parametrize(
    "document", ["{ requiredItems { name } }", "{ failingItem { name } }", "{ castThing { name } }"]
)
async def test_a_value_graphql_core_reports_as_an_error_makes_the_compiled_run_give_up(document: str) -> None:
    reference = await _reference(document)
    assert reference.errors

    with pytest.raises(Bail):
        await _compiled(document)


async def test_paths_are_made_only_where_a_resolver_reads_them() -> None:
    with_resolver, without = "{ branches { label leaves { name where } } }", "{ branches { label leaves { name } } }"
    for document, paths in ((with_resolver, True), (without, False)):
        executor: Any = Executor.build(SCHEMA._schema, parse(document), is_awaitable=IS_AWAITABLE)
        root = PLANS.root(document, executor.operation, executor, _bindings(SCHEMA))
        branches = root.fields[0].completion
        assert branches.inner is not None
        branch = branches.inner.selection
        assert branch is not None
        assert branch.paths is paths
        assert root.fields[0].path  # a root field with a resolver reads its own path
