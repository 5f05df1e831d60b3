"""The schema's extension runner calls every kind of hook as Strawberry's own runner does, wrapping each once."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext

from schema.extensions import runner

CALLS: list[str] = []


class SyncHooks(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        CALLS.append("sync operation enter")
        yield
        result = self.execution_context.result
        CALLS.append(f"sync operation exit, errors: {bool(result and result.errors)}")

    def on_execute(self) -> Iterator[None]:
        CALLS.append("sync execute enter")
        yield
        CALLS.append("sync execute exit")


class AsyncHooks(SchemaExtension):
    async def on_parse(self) -> AsyncIterator[None]:
        CALLS.append("async parse enter")
        yield
        CALLS.append("async parse exit")

    async def on_validate(self) -> AsyncIterator[None]:
        CALLS.append("async validate enter")
        yield
        CALLS.append("async validate exit")


class PlainHooks(SchemaExtension):
    def on_validate(self) -> None:  # type: ignore[override]  # a plain callable hook, as Strawberry allows
        CALLS.append("plain validate")

    async def on_execute(self) -> None:  # type: ignore[override]  # and a coroutine
        CALLS.append("coroutine execute")


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"

    @strawberry.field
    def broken(self) -> str:
        raise ValueError("no")


class WrappedOnceSchema(strawberry.Schema):
    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return runner.ExtensionsRunner(execution_context=execution_context, extensions=extensions)


EXTENSIONS: list[Any] = [SyncHooks, AsyncHooks, PlainHooks]


async def _calls(schema: strawberry.Schema, query: str) -> tuple[list[str], Any]:
    CALLS.clear()
    result = await schema.execute(query)
    return list(CALLS), result


async def test_hooks_run_in_the_order_and_with_the_outcome_of_strawberrys_runner() -> None:
    strawberrys = strawberry.Schema(query=Query, extensions=EXTENSIONS)
    ours = WrappedOnceSchema(query=Query, extensions=EXTENSIONS)
    for query in ("{ hello }", "{ broken }", "{ nope }", "{ hello"):
        expected, expected_result = await _calls(strawberrys, query)
        calls, result = await _calls(ours, query)
        assert calls == expected, query
        assert result.data == expected_result.data
        assert [error.message for error in result.errors or []] == [
            error.message for error in expected_result.errors or []
        ]
    assert "sync execute enter" in calls or "async parse enter" in calls


async def test_each_class_hook_is_wrapped_once() -> None:
    ours = WrappedOnceSchema(query=Query, extensions=EXTENSIONS)
    await ours.execute("{ hello }")
    factory = runner.hook_factory(SyncHooks, "on_operation")
    await ours.execute("{ hello }")
    assert runner.hook_factory(SyncHooks, "on_operation") is factory
    assert factory is not None
    assert factory[1] is False
    async_factory = runner.hook_factory(AsyncHooks, "on_parse")
    assert async_factory is not None
    assert async_factory[1] is True
    assert runner.hook_factory(SyncHooks, "on_parse") is None  # not implemented: no hook at all
