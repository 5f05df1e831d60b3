"""The one Strawberry schema, composed from every domain's root types."""

from collections.abc import Iterator
from contextlib import suppress
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from api.auth.principal import RefuseUntrustedCredentials
from api.errors import ErrorFormatter, log_unexpected
from api.http import MarkExecutionStarted
from api.limits import RateLimitedStatus
from api.observability import OperationObserver
from domains.orders.mutations import OrdersMutation
from domains.orders.queries import OrdersQuery
from domains.products.mutations import ProductsMutation
from domains.products.queries import ProductsQuery
from domains.users.mutations import UsersMutation
from domains.users.queries import UsersQuery
from schema.node import NodeQuery

DOCUMENT_CACHE_SIZE = 512


@strawberry.type(description="Read the storefront: the catalog, your account and orders, any object by id.")
class Query(NodeQuery, UsersQuery, ProductsQuery, OrdersQuery):
    pass


@strawberry.type(
    description="Change the storefront: accounts, the catalog, reviews and orders. Each field runs in one transaction."
)
class Mutation(UsersMutation, OrdersMutation, ProductsMutation):
    pass


class DocumentCache(ParserCache):
    """ParserCache that leaves syntax errors to Strawberry's own parse step.

    An error raised inside an `on_parse` hook escapes the operation's extensions, so it would
    reach the client without `extensions.code`. Parsing again there costs nothing that matters.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        yield


class StorefrontSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Expected errors (bad input, validation) are the client's business; only log ours.
        log_unexpected(errors, execution_context)


def build_schema(*, introspection: bool = True) -> StorefrontSchema:
    """Build the schema; production turns introspection off."""
    # Factories: Strawberry builds fresh extensions per request; the caches live at module level.
    extensions: list[Any] = [
        ErrorFormatter,
        OperationObserver,
        RateLimitedStatus,
        RefuseUntrustedCredentials,
        lambda: DocumentCache(maxsize=DOCUMENT_CACHE_SIZE),
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
    ]
    if not introspection:
        extensions.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    # Last, so it sees whether any extension before it answered instead of executing.
    extensions.append(MarkExecutionStarted)
    return StorefrontSchema(
        query=Query, mutation=Mutation, extensions=extensions, config=StrawberryConfig(auto_camel_case=True)
    )


schema = build_schema()
