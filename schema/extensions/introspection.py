"""Introspection per caller: in production only the roles that need the schema (staff, API keys for codegen) read it.

Validation results are cached per document (LimitedValidationCache), so who asks cannot be a validation
rule. After validation, a document that asks for `__schema` or `__type` is checked once more, with
graphql-core's own NoSchemaIntrospectionCustomRule, when the caller holds none of the roles the settings
name: the same error as when introspection is off for everyone. `__typename` is always allowed. An
allowed introspection query still pays its cost (schema.extensions.limits), like any other operation.
"""

import re
from collections.abc import Iterator

from graphql import NoSchemaIntrospectionCustomRule, validate
from strawberry.extensions import SchemaExtension

from schema.context import Context

# `__typename` is never introspection of the schema; `__type(name:)` and `__schema` are.
_SCHEMA_FIELD = re.compile(r"__(?:schema|type)\b")


class IntrospectionAccess(SchemaExtension):
    """Refuse `__schema` and `__type` to callers the settings' introspection roles leave out."""

    def on_validate(self) -> Iterator[None]:
        # Before the yield: Strawberry reads the errors inside the validation step, and the validation
        # cache, listed before this extension, has already set them.
        context = self.execution_context
        if self._refused(context.context) and context.graphql_document is not None:
            errors = validate(context.schema._schema, context.graphql_document, [NoSchemaIntrospectionCustomRule])
            if errors:
                context.pre_execution_errors = errors
        yield

    def _refused(self, context: object) -> bool:
        if self.execution_context.pre_execution_errors or not isinstance(context, Context):
            return False
        if not _SCHEMA_FIELD.search(self.execution_context.query or ""):
            return False
        roles = context.settings.introspection_allowed_roles
        return roles is not None and not any(context.principal.has_role(role) for role in roles)
