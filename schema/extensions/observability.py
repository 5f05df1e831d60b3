"""Observe each operation: name it in the logs, count it in the metrics, and record whether it executed."""

import time
from collections.abc import Iterator

import structlog
from strawberry.extensions import SchemaExtension

from domains.common.principal import Principal
from schema import metrics
from schema.extensions.errors import error_code


def principal_label(principal: Principal) -> str:
    """Name who is asking for logs: a user id or an API key's public prefix, never a secret."""
    if principal.api_key_prefix is not None:
        return f"api_key:{principal.api_key_prefix}"
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    return "anonymous"


class OperationObserver(SchemaExtension):
    """Name the GraphQL operation in the request's logs and count it in the metrics."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        context = self.execution_context.context
        principal = getattr(context, "principal", None)
        who = principal_label(principal) if isinstance(principal, Principal) else "anonymous"
        structlog.contextvars.bind_contextvars(principal=who, operation_name=self.execution_context.operation_name)
        yield
        execution = self.execution_context
        try:
            operation_type = execution.operation_type.value
        except Exception:  # no parsed document or no such operation: nothing to name
            operation_type = "unknown"
        result = execution.result
        errors = (result.errors if result is not None else None) or execution.pre_execution_errors or []
        codes = [error_code(error) for error in errors]
        name = execution.operation_name
        metrics.GRAPHQL_OPERATIONS.labels(
            metrics.operation_label(name), operation_type, "error" if codes else "ok"
        ).inc()
        metrics.GRAPHQL_DURATION.labels(operation_type).observe(time.perf_counter() - started)
        for code in codes:
            metrics.GRAPHQL_ERRORS.labels(code).inc()
        request = getattr(context, "request", None)
        if request is not None:
            # Read back by the access log, with the cost QueryLimits leaves beside it.
            request.state.graphql = {"operation_name": name, "operation_type": operation_type, "principal": who}


class MarkExecutionStarted(SchemaExtension):
    """Record on the context whether execution began; before that, a response carries no `data`.

    Listed last among the schema's extensions, so an earlier one that answers instead of executing
    (it sets `execution_context.result`) is seen here. Execution that graphql-core refused before
    resolving any field (variables that do not coerce: no data, no error with a path) counts as
    not started: to the GraphQL-over-HTTP spec, that is a request error like a validation error.
    """

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if self.execution_context.result is None:
            context.execution_started = True
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None) or []
        if result is not None and result.data is None and errors and all(error.path is None for error in errors):
            context.execution_started = False
