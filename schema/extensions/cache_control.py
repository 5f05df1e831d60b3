"""The HTTP cache policy of a query sent with GET, from the schema's `@cacheControl` hints.

The rules are Apollo Server's (schema/cache_control.py): an answer may be cached for the smallest
maxAge among the fields it selects, and only by the asking client once one of them is PRIVATE.
Apollo applies them while resolving; here they are applied to the document, before execution and
once per (document, operation name), in a bounded LRU beside the parser's and validator's caches:
- a field returning an interface or a union (`node`, `nodes`) counts as every type that
  implements it, since the document cannot say which one an id will name;
- fragments count whatever their type condition, and `@skip`/`@include` are ignored: a field that
  may be skipped can only make the answer less cacheable than it is, never more.

A shared cache may keep an answer (`Cache-Control: public, max-age=N`) only when it answers an
anonymous GET query without any error and its policy is PUBLIC with a maxAge above 0. This module
alone decides that (`shared_max_age`): SharedCachePolicy marks such an answer, QueryLimits leaves
this client's figures out of its body, and the edge (api/http_cache.py `settle`) stores, tags and
revalidates only a marked answer (`is_marked_shared`), and answers everything else `private, no-store`.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLCompositeType,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
    is_composite_type,
)
from starlette.requests import Request
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types import ExecutionContext
from strawberry.types.unset import UnsetType

from domains.common.principal import ANONYMOUS
from schema.cache_control import CacheControl, CacheControlScope
from schema.context import Context
from schema.extensions.complexity import find_operation

POLICY_CACHE_SIZE = 512
SHARED = "public"  # how the mark starts: `public, max-age=N`


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How long and by whom an answer may be cached; a maxAge of None is not limited (yet)."""

    max_age: int | None = None
    private: bool = False

    def restrict(self, other: "CachePolicy") -> "CachePolicy":
        """Return the stricter of the two: the smaller maxAge, and PRIVATE if either is."""
        ages = [age for age in (self.max_age, other.max_age) if age is not None]
        return CachePolicy(min(ages) if ages else None, self.private or other.private)

    @property
    def shared_max_age(self) -> int | None:
        """Seconds any cache may keep the answer; None when no shared cache may keep it at all."""
        return None if self.private or not self.max_age else self.max_age


NOT_LIMITED = CachePolicy()
UNCACHEABLE = CachePolicy(max_age=0)


@dataclass(frozen=True, slots=True)
class _Hint:
    max_age: int | None = None
    scope: CacheControlScope | None = None
    inherit_max_age: bool = False


def _set(value: Any) -> Any:
    return None if isinstance(value, UnsetType) else value


def _hint(element: GraphQLNamedType | GraphQLField | None) -> _Hint:
    """The `@cacheControl` Strawberry attached to a type or a field of the schema (none: an empty hint)."""
    extensions = getattr(element, "extensions", None) or {}
    definition = extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    for directive in getattr(definition, "directives", None) or ():
        if isinstance(directive, CacheControl):
            return _Hint(_set(directive.max_age), _set(directive.scope), bool(_set(directive.inherit_max_age)))
    return _Hint()


class _PolicyWalker:
    """The policy of a selection, with fragments expanded once per (selection set, parent type)."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self._schema = schema
        self._fragments = fragments
        self._memo: dict[tuple[int, str], CachePolicy] = {}

    def selection_set(self, node: SelectionSetNode, parent: GraphQLCompositeType) -> CachePolicy:
        key = (id(node), parent.name)
        if key in self._memo:
            return self._memo[key]
        policy = NOT_LIMITED
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                policy = policy.restrict(self._field(selection, parent))
            elif isinstance(selection, InlineFragmentNode):
                policy = policy.restrict(self._fragment(selection.selection_set, selection, parent))
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in self._fragments:
                fragment = self._fragments[selection.name.value]
                policy = policy.restrict(self._fragment(fragment.selection_set, fragment, parent))
        self._memo[key] = policy
        return policy

    def _fragment(
        self,
        node: SelectionSetNode,
        fragment: InlineFragmentNode | FragmentDefinitionNode,
        parent: GraphQLCompositeType,
    ) -> CachePolicy:
        condition = fragment.type_condition
        inner = self._schema.get_type(condition.name.value) if condition is not None else parent
        return self.selection_set(node, inner) if is_composite_type(inner) else UNCACHEABLE

    def _field(self, node: FieldNode, parent: GraphQLCompositeType) -> CachePolicy:
        if node.name.value == "__typename":
            return NOT_LIMITED  # a scalar: it follows its parent
        definitions = list(self._definitions(parent, node.name.value))
        if not definitions:
            return UNCACHEABLE  # introspection (`__schema`, `__type`): never cached
        root = parent is self._schema.query_type
        policy = NOT_LIMITED
        for definition in definitions:
            named = get_named_type(definition.type)
            for target in self._targets(named):
                policy = policy.restrict(self._field_policy(definition, target, root=root))
            if node.selection_set is not None and is_composite_type(named):
                policy = policy.restrict(self.selection_set(node.selection_set, named))
        return policy

    def _definitions(self, parent: GraphQLCompositeType, name: str) -> Iterator[GraphQLField]:
        """The field as every type the parent may be at run time defines it (an interface: each implementation)."""
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) and name in parent.fields:
            yield parent.fields[name]
        if is_abstract_type(parent):
            for possible in self._schema.get_possible_types(parent):
                if name in possible.fields:
                    yield possible.fields[name]

    def _targets(self, named: GraphQLNamedType) -> list[GraphQLNamedType | None]:
        """The types whose hints a field returning `named` takes: an abstract type stands for all its types."""
        if not is_composite_type(named):
            return [None]
        if not is_abstract_type(named):
            return [named]
        possible: list[GraphQLNamedType | None] = list(self._schema.get_possible_types(named))
        return [named, *possible] if _hint(named) != _Hint() else possible

    @staticmethod
    def _field_policy(definition: GraphQLField, target: GraphQLNamedType | None, *, root: bool) -> CachePolicy:
        """Apollo Server's rule for one field returning `target` (None: a scalar or an enum)."""
        type_hint, field_hint = _hint(target), _hint(definition)
        inherit = type_hint.inherit_max_age
        if field_hint.inherit_max_age and type_hint.max_age is None:
            inherit, max_age = True, None
        else:
            max_age = field_hint.max_age if field_hint.max_age is not None else type_hint.max_age
        scope = field_hint.scope or type_hint.scope
        if max_age is None and (root or (target is not None and not inherit)):
            max_age = 0  # an object is as old as nothing says, unless it follows its parent
        return CachePolicy(max_age, scope is CacheControlScope.PRIVATE)


@lru_cache(maxsize=POLICY_CACHE_SIZE)
def operation_policy(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None) -> CachePolicy:
    """Return the cache policy of an operation's selection; kept per (schema, document, operation name)."""
    operation = find_operation(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY or schema.query_type is None:
        return UNCACHEABLE
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    policy = _PolicyWalker(schema, fragments).selection_set(operation.selection_set, schema.query_type)
    return policy if policy.max_age is not None else UNCACHEABLE


def shared_max_age(execution: ExecutionContext) -> int | None:
    """Seconds any cache may keep this operation's answer; None unless it is an anonymous, error-free GET query.

    The one decision (see the module's docstring). Anonymous: no credential was presented, since a
    trusted one names a user and one that is not trusted is refused (`context.refusal`, an error).
    """
    context = execution.context
    request = getattr(context, "request", None)
    if not isinstance(request, Request) or request.method != "GET" or not isinstance(context, Context):
        return None
    if context.principal != ANONYMOUS or context.refusal is not None:
        return None
    result = execution.result
    if execution.pre_execution_errors or (result is not None and result.errors) or execution.graphql_document is None:
        return None
    return operation_policy(
        execution.schema._schema, execution.graphql_document, execution.operation_name
    ).shared_max_age


def is_marked_shared(response: Response) -> bool:
    """Whether SharedCachePolicy marked this answer one any cache may keep."""
    return response.headers.get("cache-control", "").startswith(SHARED)


class SharedCachePolicy(SchemaExtension):
    """Mark an answer any cache may keep `Cache-Control: public, max-age=N`; the edge makes the rest private."""

    def on_operation(self) -> Iterator[None]:
        yield
        max_age = shared_max_age(self.execution_context)
        response = getattr(self.execution_context.context, "response", None)
        if max_age is not None and isinstance(response, Response):
            response.headers["Cache-Control"] = f"{SHARED}, max-age={max_age}"
