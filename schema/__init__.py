"""The one Strawberry schema, composed from every domain's root types."""

from collections.abc import Awaitable, Iterable, Iterator
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    NameNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql import OperationType as AstOperationType
from graphql.validation import MaxIntrospectionDepthRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, ParserCache, SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from domains.common.background import Deadline
from schema import metrics
from schema.compiled.extension import CompiledExecution, release_executor
from schema.compiled.plan import PlanCache
from schema.context import Context
from schema.extensions.cache_control import SharedCachePolicy
from schema.extensions.credentials import RefuseUntrustedCredentials
from schema.extensions.errors import ErrorFormatter, log_unexpected, timeout_result
from schema.extensions.introspection import IntrospectionAccess
from schema.extensions.limits import ErrorStatus, LimitedValidationCache, QueryLimits
from schema.extensions.observability import MarkExecutionStarted, OperationObserver
from schema.extensions.runner import ExtensionsRunner
from schema.orders.mutations import OrdersMutation
from schema.orders.queries import OrdersQuery
from schema.orders.subscriptions import OrdersSubscription
from schema.products.mutations import ProductsMutation
from schema.products.queries import ProductsQuery
from schema.relay.queries import NodeQuery
from schema.users.mutations import UsersMutation
from schema.users.queries import UsersQuery
from schema.webhooks.mutations import WebhooksMutation
from schema.webhooks.queries import WebhooksQuery

DOCUMENT_CACHE_SIZE = 512
PLAN_CACHE_SIZE = 512


@strawberry.type(description="Read the storefront: the catalog, your account and orders, any object by id.")
class Query(NodeQuery, UsersQuery, ProductsQuery, OrdersQuery, WebhooksQuery):
    pass


@strawberry.type(
    description="Change the storefront: accounts, the catalog, reviews, orders and webhooks. Each field runs in one "
    "transaction."
)
class Mutation(UsersMutation, OrdersMutation, ProductsMutation, WebhooksMutation):
    pass


@strawberry.type(description="Follow the storefront as it changes, over WebSocket (graphql-transport-ws).")
class Subscription(OrdersSubscription):
    pass


class DocumentCache(ParserCache):
    """ParserCache that reports a syntax error (or a parser limit) without parsing the document twice.

    An error raised inside an `on_parse` hook escapes the operation's extensions, so it would reach
    the client without `extensions.code`. Instead the error becomes the operation's pre-execution
    error, and a one-field stand-in document (named as the request names its operation) takes the
    place of the unparsable one: Strawberry then skips its own parse, which would cost as much again
    (about 50 ms for a document at the 2,000-token limit), and the validation cache and the limits
    leave a document with errors alone, so the stand-in is never validated or run.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        try:
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        except GraphQLError as error:
            context.pre_execution_errors = [error]
            context.graphql_document = _stand_in(context.operation_name)
        yield


def _stand_in(operation_name: str | None) -> DocumentNode:
    name = NameNode(value=operation_name) if operation_name else None
    field = FieldNode(name=NameNode(value="__typename"), arguments=(), directives=())
    operation = OperationDefinitionNode(
        operation=AstOperationType.QUERY,
        name=name,
        variable_definitions=(),
        directives=(),
        selection_set=SelectionSetNode(selections=(field,)),
    )
    return DocumentNode(definitions=(operation,))


class ReleasingExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor (as Strawberry subclasses it), letting go of itself once its operation is done.

    An executor holds `async_helpers`, a tuple of its own bound methods: a reference cycle. Through
    its context it kept the request's loaders, every row they loaded and every object made of them
    alive until the cyclic collector found it, so a request's whole working set outlived it, was
    walked by every collection and promoted to the oldest generation, whose full collections it
    then set off. Without the cycle, all of it is freed by reference counting when the request ends.
    """

    def execute_operation(self, serially: bool | None = None) -> Any:
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            return self._released(result)
        release_executor(self)
        return result

    async def _released(self, result: Awaitable[Any]) -> Any:
        try:
            return await result
        finally:
            release_executor(self)


class StorefrontSchema(strawberry.Schema):
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Run an operation under the wall-clock ceiling: past it, it is cancelled with its database work."""
        run = super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )
        if not isinstance(context_value, Context):
            return await run
        # Cancelled again while it runs on: on Python 3.11 one cancellation can be lost inside
        # `asyncio.wait_for` (redis-py's sends), and the operation would then go on past the ceiling,
        # waiting on a lock with nothing left to stop it.
        ceiling = context_value.settings.operation_timeout_seconds
        try:
            async with Deadline(ceiling):
                return await run
        except TimeoutError:
            metrics.OPERATION_TIMEOUTS.inc()
            return timeout_result(ceiling, context_value)

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        """Strawberry's runner, with each extension class's hooks wrapped once (schema/extensions/runner.py)."""
        return ExtensionsRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Expected errors (bad input, validation) are the client's business; only log ours.
        log_unexpected(errors, execution_context)


def _wraps_resolvers(factory: Any) -> bool:
    # An extension with a `resolve` hook is graphql-core middleware around every field: the plan has none.
    return bool(factory()._implements_resolve())


def build_schema(*, introspection: bool = True) -> StorefrontSchema:
    """Build the schema; `introspection=False` refuses it to every caller (IntrospectionAccess: to some)."""
    # Factories: Strawberry builds fresh extensions per request; the caches live at module level.
    # Order matters: QueryLimits measures the parsed document before the cache validates it, and its
    # on_execute runs after RefuseUntrustedCredentials (a refused credential is charged nothing).
    rules: list[Any] = [MaxIntrospectionDepthRule] + ([] if introspection else [NoSchemaIntrospectionCustomRule])
    extensions: list[Any] = [
        ErrorFormatter,
        OperationObserver,
        ErrorStatus,
        RefuseUntrustedCredentials,
        lambda: AddValidationRules(rules),
        lambda: DocumentCache(maxsize=DOCUMENT_CACHE_SIZE),
        QueryLimits,
        lambda: LimitedValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
        SharedCachePolicy,
        IntrospectionAccess,
        # Last, so it sees whether any extension before it answered instead of executing.
        MarkExecutionStarted,
    ]
    if not any(_wraps_resolvers(extension) for extension in extensions):
        # After everything else: a query none of them answered runs from its compiled plan (schema/compiled/).
        # MarkExecutionStarted sees no result before it, rightly: the compiled path executes the operation.
        plans = PlanCache(maxsize=PLAN_CACHE_SIZE)
        extensions.append(lambda: CompiledExecution(plans))
    return StorefrontSchema(
        execution_context_class=ReleasingExecutor,
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True),
    )
