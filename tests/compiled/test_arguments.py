"""A plan keeps a field's arguments when no variable is in them, and only what a resolver cannot change.

Arguments written in the document are the same for every request a plan serves, so their coerced and
converted values are made once (schema/compiled/plan.py, `FieldPlan.literal`); arguments that read a
variable are made per request, and a list argument (which a resolver may change in place) per call.
"""

from typing import Any, cast

import strawberry
from graphql import parse
from graphql.execution.executor import Executor
from strawberry.execution import optimized_is_awaitable

from schema.compiled.extension import _bindings
from schema.compiled.plan import FieldPlan, PlanCache
from schema.compiled.run import Run


@strawberry.type
class Query:
    @strawberry.field
    def echo(self, n: int = 1) -> int:
        return n

    @strawberry.field
    def tagged(self, tags: list[str]) -> int:
        tags.append("seen")  # a resolver may change what it is given
        return len(tags)


SCHEMA = strawberry.Schema(query=Query)
BINDINGS = _bindings(SCHEMA)


async def _run(plans: PlanCache, document: str, variables: dict[str, Any] | None = None) -> tuple[Any, FieldPlan]:
    executor: Any = Executor.build(
        SCHEMA._schema,
        parse(document),
        is_awaitable=cast(Any, optimized_is_awaitable),
        raw_variable_values=variables or {},
    )
    assert isinstance(executor, Executor)
    root = plans.root(document, executor.operation, executor, BINDINGS)
    return await Run(executor, BINDINGS).execute(root), root.fields[0]


async def test_literal_arguments_are_converted_once_per_plan() -> None:
    plans = PlanCache(maxsize=8)
    first, plan = await _run(plans, "{ echo(n: 2) }")
    assert first == {"echo": 2}
    assert plan.literal
    assert plan.converted == {"n": 2}
    second, same = await _run(plans, "{ echo(n: 2) }")
    assert second == {"echo": 2}
    assert same is plan


async def test_a_default_argument_is_literal_too() -> None:
    data, plan = await _run(PlanCache(maxsize=8), "{ echo }")
    assert data == {"echo": 1}
    assert plan.literal
    assert plan.converted == {"n": 1}


async def test_arguments_that_read_a_variable_are_made_per_request() -> None:
    plans = PlanCache(maxsize=8)
    document = "query Echo($n: Int) { echo(n: $n) }"
    for n in (2, 3, 2):
        data, plan = await _run(plans, document, {"n": n})
        assert data == {"echo": n}
        assert not plan.literal
        assert plan.converted is None


async def test_a_variable_inside_a_list_makes_the_arguments_per_request() -> None:
    plans = PlanCache(maxsize=8)
    document = 'query Tagged($t: String!) { tagged(tags: ["a", $t]) }'
    for tag in ("b", "c"):
        data, plan = await _run(plans, document, {"t": tag})
        assert data == {"tagged": 3}
        assert not plan.literal


async def test_a_list_argument_is_never_shared_between_calls() -> None:
    plans = PlanCache(maxsize=8)
    for _ in range(3):
        data, plan = await _run(plans, '{ tagged(tags: ["a"]) a: tagged(tags: ["a"]) }')
        # The resolver appended to its list each time; a list kept on the plan would have grown.
        assert data == {"tagged": 2, "a": 2}
        assert plan.literal
        assert plan.arguments is None
        assert plan.converted is None
