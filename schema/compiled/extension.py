"""The schema extension that answers a query from its compiled plan instead of graphql-core's executor."""

from collections.abc import AsyncIterator
from typing import Any, cast

from graphql import ExecutionResult
from graphql.execution.executor import Executor
from prometheus_client import Counter
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import SchemaExtension

from schema.compiled.plan import Bindings, NotCompilable, PlanCache
from schema.compiled.run import Bail, Run
from schema.context import Context

COMPILED = "compiled"
GRAPHQL_CORE = "graphql-core"
EXECUTION_PATH = Counter(
    "graphql_execution_path_total", "Executed GraphQL operations by the path that served them.", ["path"]
)


def compiled_enabled(context: object) -> bool:
    """Whether this request's settings let the compiled path serve its operation (the GRAPHQL_COMPILED switch)."""
    return isinstance(context, Context) and bool(getattr(context.settings, "graphql_compiled", False))


def _bindings(schema: Any) -> Bindings:
    converter = schema.schema_converter
    return Bindings(
        plain_getattr=schema.config.default_resolver is getattr,
        # Strawberry wraps every field an exception handler may answer; without any, none is wrapped.
        direct=getattr(converter, "_exception_handler_specs", None) == (),
        info_class=schema.config.info_class,
        config=schema.config,
        scalar_registry=converter.scalar_registry,
    )


def release_executor(executor: Executor[Any]) -> None:
    """Break the executor's reference cycle (its `async_helpers` are its own bound methods) once it is done.

    Otherwise the executor, and through its context everything the request loaded, waits for the
    cyclic collector instead of being freed when the request ends (schema.ReleasingExecutor).
    """
    executor.__dict__.pop("async_helpers", None)


class CompiledExecution(SchemaExtension):
    """Run a query from its plan, in `on_execute`; Strawberry then skips graphql-core's execution.

    Listed last among the schema's extensions: its `on_execute` runs after the credential check and
    the cost charge (QueryLimits), and only when none of them answered already. Everything around
    execution (error masking, the cost report, the metrics and the log line) is the same for both paths.
    """

    def __init__(self, plans: PlanCache) -> None:
        self.plans = plans

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        if execution.result is None:
            result = await self._compiled() if compiled_enabled(execution.context) else None
            EXECUTION_PATH.labels(GRAPHQL_CORE if result is None else COMPILED).inc()
            if result is not None:
                execution.result = result
                if isinstance(execution.context, Context):
                    # A query has read all it will: its connection goes back to the pool now, not after
                    # the extensions, the response's JSON and its headers (at c=50 on a pool of 15,
                    # requests queue for connections that are held through that).
                    await execution.context.db.release()
        yield

    async def _compiled(self) -> ExecutionResult | None:
        execution = self.execution_context
        document, query = execution.graphql_document, execution.query
        if document is None or query is None:
            return None
        schema = execution.schema
        executor: Any = Executor.build(
            schema._schema,
            document,
            root_value=execution.root_value,
            context_value=execution.context,
            raw_variable_values=execution.variables,
            operation_name=execution.operation_name,
            is_awaitable=cast(Any, optimized_is_awaitable),  # Strawberry passes graphql-core the same
        )
        if not isinstance(executor, Executor):
            return None  # variables that do not coerce: graphql-core reports them
        bindings = _bindings(schema)
        try:
            root = self.plans.root(query, executor.operation, executor, bindings)
        except NotCompilable:
            release_executor(executor)
            return None
        try:
            data = await Run(executor, bindings).execute(root)
        except Bail:
            # graphql-core answers from nothing loaded, as it does alone: with the attempt's values at
            # hand its fields would finish in another order, and where an error nulls the whole `data`
            # the other errors it still reports would differ (tests/compiled/test_bail_state.py).
            execution.context.renew_loaders()
            return None
        finally:
            release_executor(executor)
        return ExecutionResult(data=data, errors=None)
