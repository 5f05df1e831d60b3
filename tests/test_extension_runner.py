"""The schema's extension runner calls every kind of hook as Strawberry's own runner does, finding each once."""

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


async def test_each_stage_finds_its_hooks_once() -> None:
    ours = WrappedOnceSchema(query=Query, extensions=EXTENSIONS)
    await ours.execute("{ hello }")
    hooks = runner.stage_hooks((SyncHooks, AsyncHooks, PlainHooks), "on_execute")
    await ours.execute("{ hello }")
    assert runner.stage_hooks((SyncHooks, AsyncHooks, PlainHooks), "on_execute") is hooks
    assert [(index, hook.kind) for index, hook in hooks] == [(0, "generator"), (2, "coroutine")]
    assert [(index, hook.kind) for index, hook in runner.stage_hooks((AsyncHooks,), "on_parse")] == [
        (0, "async generator")
    ]
    assert runner.class_hook(SyncHooks, "on_parse") is None  # not implemented: no hook at all


class SwallowsValueErrors(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except ValueError as exc:
            CALLS.append(f"swallowed {exc}")
        CALLS.append("swallowing operation exit")


class RaisesLeavingValidation(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        yield
        CALLS.append("raising validate exit")
        raise ValueError("left validation badly")


class AsyncRaisesLeavingExecution(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            CALLS.append("async execute exit")
        raise KeyError("left execution badly")


class SeesTheError(SchemaExtension):
    async def on_validate(self) -> AsyncIterator[None]:
        try:
            yield
        except ValueError as exc:
            CALLS.append(f"saw {exc}")
            raise


async def test_exceptions_leave_the_hooks_as_strawberrys_exit_stacks_do() -> None:
    seen: list[str] = []
    extension_sets: list[list[Any]] = [
        [SyncHooks, RaisesLeavingValidation, AsyncHooks],
        [SyncHooks, SeesTheError, RaisesLeavingValidation],
        [SwallowsValueErrors, SyncHooks, RaisesLeavingValidation],
        [SyncHooks, AsyncRaisesLeavingExecution, PlainHooks],
        [SwallowsValueErrors, AsyncRaisesLeavingExecution],
    ]
    for extensions in extension_sets:
        strawberrys = strawberry.Schema(query=Query, extensions=extensions)
        ours = WrappedOnceSchema(query=Query, extensions=extensions)
        for query in ("{ hello }", "{ broken }"):
            expected, expected_result = await _calls(strawberrys, query)
            calls, result = await _calls(ours, query)
            assert calls == expected, (extensions, query)
            assert result.data == expected_result.data
            assert [error.message for error in result.errors or []] == [
                error.message for error in expected_result.errors or []
            ], (extensions, query)
            seen.extend(calls)
    # Hooks did raise on the way out, one saw another's exception, and one caught it.
    assert {"raising validate exit", "saw left validation badly", "swallowed left validation badly"} <= set(seen)
    assert "async execute exit" in seen


class FailsEnteringExecution(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        CALLS.append("failing execute enter")
        raise ValueError("cannot start")
        yield  # pragma: no cover - a generator hook that never gets here


class RecordsLeavingExecution(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        CALLS.append("recording execute enter")
        try:
            yield
        except ValueError as exc:
            CALLS.append(f"execute left with {exc}")
            raise


async def test_a_hook_failing_on_the_way_in_leaves_the_hooks_entered_before_it() -> None:
    extensions: list[Any] = [RecordsLeavingExecution, FailsEnteringExecution, AsyncRaisesLeavingExecution]
    calls, result = await _calls(WrappedOnceSchema(query=Query, extensions=extensions), "{ hello }")
    assert result.data is None
    assert [error.message for error in result.errors or []] == ["cannot start"]
    # The execution and the hook after the failing one never ran; the one before it left with the exception
    # (Strawberry's own exit stack leaves it suspended, to be closed whenever it is collected).
    assert calls == ["recording execute enter", "failing execute enter", "execute left with cannot start"]
    strawberrys, _ = await _calls(strawberry.Schema(query=Query, extensions=extensions), "{ hello }")
    assert strawberrys == calls[:-1]
