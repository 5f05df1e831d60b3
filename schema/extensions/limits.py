"""The GraphQL side of the limits: refuse too-large operations before any resolver runs, charge the budget.

Order of one operation:
1. parse, with the token limit enforced by the parser itself (a huge document is never fully parsed);
2. depth and aliases, on the parsed document, before validation (so validation's own work is bounded);
3. validation (cached), with graphql-core's introspection depth rule;
4. before execution: unstorable strings, variables coerced, page sizes and the static cost;
5. the client's budget is charged the cost (HTTP 429 once it is spent);
6. execution, under the wall-clock ceiling (StorefrontSchema in schema/__init__.py).
Every response reports `extensions.cost {requested, remaining, resetAt}`; an answer any cache may keep
(schema/extensions/cache_control.py) reports `remaining` and `resetAt` as null, in the RateLimit-* headers only.
"""

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from graphql import DocumentNode, ExecutionResult, GraphQLError
from graphql.execution.values import VariableValues, get_variable_values
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from domains.common.exceptions import ClientError, RateLimitedError, ServiceUnavailableError
from domains.common.principal import Principal
from schema import metrics
from schema.compiled.plan import frozen
from schema.context import Context
from schema.extensions.cache_control import shared_max_age
from schema.extensions.complexity import (
    Limits,
    QueryTooComplexError,
    check_storable_literals,
    check_storable_variables,
    cost_variables,
    find_operation,
    measure_cost,
    measure_structure,
)
from schema.rate_limits import LimitStoreUnavailableError, Window, client_network
from schema.settings import SchemaSettings

BUDGET_SPENT = "The cost budget of this client is spent until {reset}; see extensions.cost."
MEASURED_DOCUMENTS = 512  # as many as the parser and validation caches keep


def limits_from(settings: SchemaSettings) -> Limits:
    """Build the operation limits these settings describe."""
    defaults = Limits()
    return Limits(
        max_depth=settings.query_max_depth,
        max_aliases=settings.query_max_aliases,
        max_repeats=settings.query_max_field_repeats,
        max_cost=settings.query_max_cost,
        max_page_size=settings.query_max_page_size,
        mutation_cost=settings.query_mutation_cost,
        weights={**defaults.weights, **settings.query_cost_weights},
    )


def budget_client(principal: Principal, client_ip: str) -> str:
    """Name whose budget an operation spends: an API key, a user, or the client IP when anonymous."""
    if principal.api_key_prefix is not None:
        return f"key:{principal.api_key_prefix}"
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    return f"ip:{client_network(client_ip)}"


def _iso(epoch: float | None) -> str | None:
    return _iso_of(epoch) if epoch is not None else None


@lru_cache(maxsize=256)
def _iso_of(epoch: float) -> str:
    """A window's end as ISO 8601: the same for every request of the window (a minute), made once."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _limits_key(limits: Limits) -> Hashable:
    return (
        limits.max_depth,
        limits.max_aliases,
        limits.max_repeats,
        limits.max_cost,
        limits.max_page_size,
        limits.mutation_cost,
        tuple(sorted(limits.weights.items())),
    )


@dataclass(slots=True, eq=False)
class Measured:
    """What the limits found of one (document text, operation name, limits): its structure within them.

    Its literal strings, once found storable, and its cost for each value of the variables the cost
    reads (a page size, a `@skip` condition) are kept too. Only passes are kept: a refusal is
    measured again, and raised afresh, every time.
    """

    cost_variables: tuple[str, ...]
    literals_storable: bool = False
    costs: "OrderedDict[Hashable, int]" = field(default_factory=OrderedDict)


class MeasureCache:
    """A bounded LRU of what the limits measured per document, so a repeated operation is not walked again.

    A document's structure needs the document alone and its cost the values of a few variables (a
    ProductById walked its document twice per request before: about a tenth of its CPU).
    """

    COSTS_PER_DOCUMENT = 16

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[Hashable, Measured] = OrderedDict()

    def get(self, query: str, operation_name: str | None, limits: Limits) -> Measured | None:
        """The entry of a document whose structure passed these limits; None when it was not measured."""
        key = (query, operation_name, _limits_key(limits))
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def passed(self, query: str, operation_name: str | None, limits: Limits, document: DocumentNode) -> Measured:
        """Remember that a document's structure passed these limits; return its entry."""
        entry = self._entries[(query, operation_name, _limits_key(limits))] = Measured(cost_variables(document))
        if len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return entry

    def cost(self, entry: Measured | None, variables: VariableValues, measure: Callable[[], int]) -> int:
        """The cost for these coerced variables: kept, or measured (then kept when there is an entry)."""
        if entry is None:
            return measure()
        values = tuple(frozen(variables.coerced.get(name)) for name in entry.cost_variables)
        cost = entry.costs.get(values)
        if cost is None:
            cost = entry.costs[values] = measure()
            if len(entry.costs) > self.COSTS_PER_DOCUMENT:
                entry.costs.popitem(last=False)
        return cost


_MEASURED = MeasureCache(MEASURED_DOCUMENTS)


def _error(exc: ClientError) -> GraphQLError:
    nodes = getattr(exc, "nodes", None)
    return GraphQLError(exc.message, nodes=nodes, original_error=exc, extensions=getattr(exc, "extensions", None))


class QueryLimits(SchemaExtension):
    """Enforce SPEC §5 on every operation and report its cost; see the module docstring for the order."""

    def __init__(self) -> None:
        self.requested = 0
        self.window: Window | None = None
        self._limits: Limits | None = None
        # This document's entry in the measure cache, found (or made) by on_validate for _admit.
        self._measured: Measured | None = None

    def _limits_for(self, settings: SchemaSettings) -> Limits:
        # Built once per operation: both the structural check and the cost check read it.
        if self._limits is None:
            self._limits = limits_from(settings)
        return self._limits

    def on_operation(self) -> Iterator[None]:
        settings = self._settings()
        if settings is not None:
            # The parser stops at the limit: tokens, and comments (which it would otherwise read all of).
            # Strawberry's ParseOptions type names only max_tokens; graphql-core's parse() takes these.
            options = cast(dict[str, Any], self.execution_context.parse_options)
            options["max_lexical_tokens"] = options["max_comments"] = settings.query_max_tokens
        yield

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        settings = self._settings()
        document, query = execution.graphql_document, execution.query
        if settings is not None and document is not None and query is not None:
            limits = self._limits_for(settings)
            if not execution.pre_execution_errors:
                self._measured = _MEASURED.get(query, execution.operation_name, limits)
            if self._measured is None:
                try:
                    measure_structure(document, execution.operation_name, limits)
                except QueryTooComplexError as exc:
                    execution.pre_execution_errors = [_error(exc)]
                else:
                    if not execution.pre_execution_errors:  # not the stand-in of a document that did not parse
                        self._measured = _MEASURED.passed(query, execution.operation_name, limits, document)
        yield

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        if execution.result is None and self._settings() is not None:
            error = await self._admit()
            if error is not None:
                execution.result = ExecutionResult(data=None, errors=[error])
        yield

    async def _admit(self) -> GraphQLError | None:
        execution = self.execution_context
        context = execution.context
        document = execution.graphql_document
        operation = find_operation(document, execution.operation_name) if document else None
        if document is None or operation is None:
            return None
        limits = self._limits_for(context.settings)
        measured = self._measured
        try:
            check_storable_variables(execution.variables)
            if measured is None or not measured.literals_storable:
                check_storable_literals(document)
                if measured is not None:
                    measured.literals_storable = True
            schema = execution.schema._schema
            coerced = get_variable_values(
                schema, operation.variable_definitions or (), execution.variables or {}, max_errors=10
            )
            if isinstance(coerced, list):
                return None  # execution reports the bad variables, before any resolver runs
            self.requested = _MEASURED.cost(
                measured, coerced, lambda: measure_cost(schema, document, operation, coerced, limits)
            )
            if self.requested > limits.max_cost:
                raise QueryTooComplexError("cost", self.requested, limits.max_cost)
            self.window = await context.rate_limits.spend_cost(self._client(), self.requested)
        except ClientError as exc:
            return _error(exc)
        if not self.window.allowed:
            reset = _iso(self.window.reset_at)
            return _error(RateLimitedError(BUDGET_SPENT.format(reset=reset), retry_after=self.window.retry_after()))
        metrics.GRAPHQL_COST.observe(self.requested)
        return None

    async def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        if self._settings() is None:
            return {}
        if self.window is None:
            try:
                self.window = await context.rate_limits.spend_cost(self._client(), 0)
            except LimitStoreUnavailableError:
                self.window = Window(context.rate_limits.cost_budget.amount, None, None)
        self._set_headers(self.window)
        window = self.window
        report: dict[str, Any] = {"requested": self.requested, "remaining": None, "resetAt": None}
        # An answer any cache may keep is served to other clients: its body carries no figure of this
        # client's (and changes only with the data, so its ETag matches again); the RateLimit-* headers
        # still tell the client that asked.
        if shared_max_age(self.execution_context) is None:
            report.update(remaining=window.remaining, resetAt=_iso(window.reset_at))
        request = getattr(context, "request", None)
        if request is not None:
            request.state.graphql_cost = self.requested  # read by the access log line
        return {"cost": report}

    def _set_headers(self, window: Window) -> None:
        response = getattr(self.execution_context.context, "response", None)
        if not isinstance(response, Response):
            return
        response.headers["RateLimit-Limit"] = str(window.limit)
        budget_window = int(self.execution_context.context.rate_limits.cost_budget.get_expiry())
        response.headers["RateLimit-Policy"] = f"{window.limit};w={budget_window}"
        if window.remaining is not None and window.reset_at is not None:
            response.headers["RateLimit-Remaining"] = str(window.remaining)
            response.headers["RateLimit-Reset"] = str(window.retry_after())

    def _client(self) -> str:
        context = self.execution_context.context
        return budget_client(context.principal, context.client_ip)

    def _settings(self) -> SchemaSettings | None:
        # Schema-level tests may execute without our context; limits need its settings and stores.
        context = self.execution_context.context
        return context.settings if isinstance(context, Context) else None


class LimitedValidationCache(SchemaExtension):
    """Validate a document once per (schema, text, rules), and never one the limits already refused.

    Strawberry's ValidationCache keys its LRU by the parsed document, whose hash walks the whole
    tree (graphql-core's nodes are frozen dataclasses): about a fortieth of a ProductById's CPU.
    The text names the same document (the parser cache gives one per text), and hashes once.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        if execution.pre_execution_errors or document is None:
            yield
            return
        schema, rules = execution.schema._schema, execution.validation_rules
        if execution.query is None:  # pragma: no cover - Strawberry always has the text it parsed
            execution.pre_execution_errors = validate_document(schema, document, rules)
            yield
            return
        key = (schema, execution.query, rules)
        errors = _VALIDATED.get(key)
        if errors is None:
            errors = _VALIDATED[key] = validate_document(schema, document, rules)
            if len(_VALIDATED) > self.maxsize:
                _VALIDATED.popitem(last=False)
        else:
            _VALIDATED.move_to_end(key)
        execution.pre_execution_errors = errors
        yield


_VALIDATED: "OrderedDict[Hashable, list[GraphQLError]]" = OrderedDict()


class ErrorStatus(SchemaExtension):
    """Give refusals their HTTP status, with `Retry-After`: 429 (rate limited) or 503 (a store or the database down).

    503 only when the operation has no data at all: an answer with data is 200 (GraphQL over HTTP),
    its failed fields carrying SERVICE_UNAVAILABLE.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        response = getattr(self.execution_context.context, "response", None)
        if result is None or not result.errors or not isinstance(response, Response):
            return
        originals = [error.original_error for error in result.errors]
        unavailable = [e for e in originals if isinstance(e, ServiceUnavailableError)]
        limited = [e for e in originals if isinstance(e, RateLimitedError)]
        if unavailable and result.data is None:
            response.status_code = 503
            response.headers["Retry-After"] = str(unavailable[0].retry_after)
        elif limited:
            response.status_code = 429
            response.headers["Retry-After"] = str(max(refusal.retry_after for refusal in limited))
