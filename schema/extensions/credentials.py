"""Refuse, as a GraphQL error, an operation whose request carried a credential that cannot be trusted."""

from collections.abc import Iterator

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension


class RefuseUntrustedCredentials(SchemaExtension):
    """Stop an operation whose request carried a credential that cannot be trusted: UNAUTHENTICATED, no data."""

    def on_execute(self) -> Iterator[None]:
        refusal = getattr(self.execution_context.context, "refusal", None)
        if refusal is not None:
            self.execution_context.result = ExecutionResult(
                data=None, errors=[GraphQLError(refusal.message, original_error=refusal)]
            )
        yield
