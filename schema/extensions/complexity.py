"""Static analysis of a GraphQL operation before any resolver runs: depth, aliases, page sizes and cost.

Two passes. `measure_structure` needs only the parsed document, so it runs before validation and
bounds the work validation may do. `measure_cost` needs the schema and the coerced variables, so
it runs on a valid document, just before execution.

Cost, in the manner of GitHub and Shopify (hand-computable; the README shows examples):
- a scalar or enum field costs 0, an object field 1 plus its selection;
- a connection field costs 1 plus, for each of the n items of its page (n is `first` or `last`,
  else the default page size), the cost of one item: `nodes` and `edges` are the lists of items,
  and an item (`node`) costs 1 plus its selection; `pageInfo` is free, `totalCount` costs 1;
- `nodes(ids:)` costs, per id, 1 plus its selection;
- a root mutation field costs the mutation weight plus its payload's selection;
- any field's own weight is set in one table, FIELD_WEIGHTS ("Type.field" or "*.field"),
  which the QUERY_COST_WEIGHTS setting overrides.
Fragments are expanded (each spread counts), `@skip`/`@include` are honoured, and sibling
selections on different types add up, so the figure is an upper bound.
"""

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    is_list_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_directive_values
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef
from graphql.validation.rules import overlapping_fields_can_be_merged

from domains.common.exceptions import BadUserInputError, ClientError

QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
DEFAULT_PAGE_SIZE = 20
# Own weights of fields; anything not listed costs 1 if it returns an object, else 0.
FIELD_WEIGHTS: Mapping[str, int] = {
    "*.edges": 0,  # an edge is the item's envelope: its `node` is what costs
    "*.pageInfo": 0,
    "*.totalCount": 1,  # a COUNT query of its own
}
# Root fields that may appear at most this many times in one operation: each checks a password
# (about 34 ms of argon2), so a batch of aliased sign-ins would buy many guesses for one request.
ROOT_FIELD_LIMITS: Mapping[str, int] = {"tokenCreate": 1, "accountRegister": 1}
# Plain list fields whose length an argument states: cost is per element.
LIST_SIZE_ARGUMENTS: Mapping[str, str] = {"Query.nodes": "ids"}
# The arguments whose values the cost reads (with `@skip`/`@include`): page sizes and list sizes.
COST_ARGUMENTS = frozenset({"first", "last", *LIST_SIZE_ARGUMENTS.values()})
# Characters no database of ours stores: PostgreSQL text refuses NUL, and UTF-8 has no lone surrogates.
UNSTORABLE_MESSAGE = "contains a character that cannot be stored (NUL or a lone surrogate)."
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


MEASURES = {
    "depth": "depth (nested fields)",
    "aliases": "number of aliases",
    "repeats": "largest number of times one field is selected in one selection set",
    "cost": "cost",
    "password checks": "number of fields that check a password (tokenCreate, accountRegister)",
}


class QueryTooComplexError(ClientError):
    """An operation over one of the limits; its extensions carry the measure, the figure and the limit."""

    code = QUERY_TOO_COMPLEX

    def __init__(self, measure: str, value: int, limit: int) -> None:
        super().__init__(f"The operation's {MEASURES.get(measure, measure)} is {value}, over the limit of {limit}.")
        self.extensions = {"measure": measure, "value": value, "limit": limit}


class PageSizeError(BadUserInputError):
    """A connection asked for a page size outside 0..max, or for `first` and `last` together."""

    def __init__(self, message: str, node: FieldNode) -> None:
        super().__init__(message)
        self.nodes = [node]


@dataclass(frozen=True, slots=True)
class Limits:
    """The figures an operation must stay within (SPEC §5)."""

    max_depth: int = 10
    max_aliases: int = 30
    max_repeats: int = 25
    max_cost: int = 5000
    max_page_size: int = 100
    mutation_cost: int = 10
    weights: Mapping[str, int] = field(default_factory=lambda: dict(FIELD_WEIGHTS))


@dataclass(frozen=True, slots=True)
class _Tally:
    depth: int = 0
    aliases: int = 0


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def find_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    """Return the operation a request names (or its only one); None when it is ambiguous or unknown."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == operation_name), None)


class _StructureWalker:
    """Depth, aliases and repeated fields of an operation with its fragments expanded.

    Each fragment is measured once, so a fragment spread ten thousand times costs one
    measurement; a fragment cycle is cut (validation refuses it). The parser bounds the
    nesting of one definition (200), which bounds the recursion here.
    """

    def __init__(self, fragments: dict[str, FragmentDefinitionNode], limits: Limits) -> None:
        self._fragments = fragments
        self._limits = limits
        self._memo: dict[str, _Tally] = {}
        self._active: set[str] = set()
        self._names_memo: dict[str, Counter[str]] = {}

    def selection_set(self, node: SelectionSetNode) -> _Tally:
        # The same field selected many times in one set makes validation compare every pair of them.
        repeats = max(self._names(node, set()).values(), default=0)
        if repeats > self._limits.max_repeats:
            raise QueryTooComplexError("repeats", repeats, self._limits.max_repeats)
        depth = aliases = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                child = self._field(selection)
            elif isinstance(selection, InlineFragmentNode):
                child = self.selection_set(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                child = self._fragment(selection.name.value)
            depth, aliases = max(depth, child.depth), aliases + child.aliases
            if aliases > self._limits.max_aliases:
                raise QueryTooComplexError("aliases", aliases, self._limits.max_aliases)
        return _Tally(depth, aliases)

    def _field(self, node: FieldNode) -> _Tally:
        own = 1 if node.alias is not None else 0
        if node.selection_set is None:
            return _Tally(1, own)
        child = self.selection_set(node.selection_set)
        # Introspection (`__schema`, `__type`) counts as one level: graphql-core's
        # MaxIntrospectionDepthRule bounds what lies below it.
        depth = 1 if node.name.value.startswith("__") else child.depth + 1
        return _Tally(depth, child.aliases + own)

    def _names(self, node: SelectionSetNode, spread: set[str]) -> Counter[str]:
        """Count the response names one selection set merges, inline fragments and fragments included."""
        names: Counter[str] = Counter()
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                names[(selection.alias or selection.name).value] += 1
            elif isinstance(selection, InlineFragmentNode):
                names += self._names(selection.selection_set, spread)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in spread:
                # Spreads of one fragment merge once, as graphql-core collects them.
                spread.add(selection.name.value)
                names += self._fragment_names(selection.name.value)
        return names

    def _fragment_names(self, name: str) -> Counter[str]:
        if name not in self._names_memo:
            fragment = self._fragments.get(name)
            self._names_memo[name] = Counter()  # a cycle contributes nothing (validation refuses it)
            if fragment is not None:
                self._names_memo[name] = self._names(fragment.selection_set, {name})
        return self._names_memo[name]

    def _fragment(self, name: str) -> _Tally:
        known = self._memo.get(name)
        if known is not None:
            return known
        fragment = self._fragments.get(name)
        if fragment is None or name in self._active:
            return _Tally()
        self._active.add(name)
        try:
            tally = self.selection_set(fragment.selection_set)
        finally:
            self._active.discard(name)
        self._memo[name] = tally
        return tally


def configure_validation_work(budget: int) -> None:
    """Bound the work graphql-core's OverlappingFieldsCanBeMerged may spend on one document (process-wide)."""
    # Past it, validation stops with "Validation aborted.": a few tens of milliseconds at 20,000,
    # while 15 Relay-style fragments on one object spend about 3,000.
    overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = budget


def validation_work_limit() -> int:
    """Return the validation work budget in force."""
    return overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET


def measure_structure(document: DocumentNode, operation_name: str | None, limits: Limits) -> _Tally:
    """Measure depth and aliases; raise QueryTooComplexError at the first limit passed."""
    operation = find_operation(document, operation_name)
    if operation is None:
        return _Tally()  # validation or execution names the problem
    try:
        tally = _StructureWalker(_fragments(document), limits).selection_set(operation.selection_set)
    except RecursionError:
        # Only a chain of fragments spreading fragments, hundreds long, gets here.
        raise QueryTooComplexError("depth", limits.max_depth + 1, limits.max_depth) from None
    if tally.depth > limits.max_depth:
        raise QueryTooComplexError("depth", tally.depth, limits.max_depth)
    if operation.operation is OperationType.MUTATION:
        _check_root_fields(operation.selection_set, _fragments(document))
    return tally


def _check_root_fields(node: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]) -> None:
    counts: Counter[str] = Counter()
    stack, seen = [node], set()
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                counts[selection.name.value] += 1
            elif isinstance(selection, InlineFragmentNode):
                stack.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                # Spreads of one fragment merge into one field set: counting each once is exact.
                seen.add(selection.name.value)
                if selection.name.value in fragments:
                    stack.append(fragments[selection.name.value].selection_set)
    for name, limit in ROOT_FIELD_LIMITS.items():
        if counts[name] > limit:
            raise QueryTooComplexError("password checks", counts[name], limit)


class _CostWalker:
    """The cost of an operation with its fragments expanded, per the model in the module docstring."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
        limits: Limits,
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self._variables = variables
        self._limits = limits
        self._memo: dict[tuple[str, int], int] = {}

    def selection_set(self, node: SelectionSetNode, parent: GraphQLNamedType, items: int) -> int:
        total = 0
        for selection in node.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent, items)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._schema.get_type(condition.name.value) if condition else parent
                total += self.selection_set(selection.selection_set, inner or parent, items)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value, items)
        return total

    def _fragment(self, name: str, items: int) -> int:
        key = (name, items)
        if key not in self._memo:
            fragment = self._fragments[name]
            condition = self._schema.get_type(fragment.type_condition.name.value)
            self._memo[key] = self.selection_set(fragment.selection_set, condition, items) if condition else 0
        return self._memo[key]

    def _field(self, node: FieldNode, parent: GraphQLNamedType, items: int) -> int:
        definition = self._definition(parent, node.name.value)
        if definition is None:
            return 0  # __typename
        named = get_named_type(definition.type)
        coordinate = f"{parent.name}.{node.name.value}"
        weight = self._weight(coordinate, node.name.value, 1 if is_composite_type(named) else 0)
        if parent is self._schema.mutation_type:
            weight = self._limits.weights.get(coordinate, self._limits.mutation_cost)
        count = items if is_list_type(get_nullable_type(definition.type)) else 1
        if node.selection_set is None:
            return count * weight
        arguments = get_argument_values(definition, node, self._variables) if definition.args else {}
        page = 1
        if _is_connection(named):
            page = self._page_size(node, arguments)
        elif coordinate in LIST_SIZE_ARGUMENTS:
            count = len(arguments.get(LIST_SIZE_ARGUMENTS[coordinate]) or ())
        return count * (weight + self.selection_set(node.selection_set, named, page))

    def _definition(self, parent: GraphQLNamedType, name: str) -> GraphQLField | None:
        if parent is self._schema.query_type and name in ("__schema", "__type"):
            return SchemaMetaFieldDef if name == "__schema" else TypeMetaFieldDef
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            found: GraphQLField | None = parent.fields.get(name)
            return found
        return None

    def _weight(self, coordinate: str, name: str, default: int) -> int:
        weights = self._limits.weights
        return weights.get(coordinate, weights.get(f"*.{name}", default))

    def _page_size(self, node: FieldNode, arguments: dict[str, Any]) -> int:
        first, last = arguments.get("first"), arguments.get("last")
        name = node.name.value
        if first is not None and last is not None:
            raise PageSizeError(f"`{name}`: pass either `first` or `last`, not both.", node)
        count = first if first is not None else last
        if count is None:
            return DEFAULT_PAGE_SIZE
        largest = self._limits.max_page_size
        if not 0 <= count <= largest:
            raise PageSizeError(f"`{name}`: `first` and `last` take a value from 0 to {largest}.", node)
        return int(count)

    def _included(self, node: FieldNode | InlineFragmentNode | FragmentSpreadNode | Any) -> bool:
        if not node.directives:
            return True
        skip = get_directive_values(GraphQLSkipDirective, node, self._variables)
        if skip is not None and skip["if"] is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self._variables)
        return not (include is not None and include["if"] is False)


def _is_connection(named: GraphQLNamedType) -> bool:
    return isinstance(named, GraphQLObjectType) and "pageInfo" in named.fields and "edges" in named.fields


def measure_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: VariableValues,
    limits: Limits,
) -> int:
    """Return the operation's cost, given coerced variables; raise BadUserInputError for a bad page size."""
    root = schema.get_root_type(OperationType(operation.operation.value))
    if root is None:
        return 0
    walker = _CostWalker(schema, _fragments(document), variables, limits)
    return walker.selection_set(operation.selection_set, root, 1)


def _unstorable_in_value(value: ValueNode, path: str) -> Iterator[str]:
    if isinstance(value, StringValueNode) and _UNSTORABLE.search(value.value):
        yield path
    elif isinstance(value, ObjectValueNode):
        for item in value.fields:
            yield from _unstorable_in_value(item.value, f"{path}.{item.name.value}")
    elif isinstance(value, ListValueNode):
        for index, element in enumerate(value.values):
            yield from _unstorable_in_value(element, f"{path}[{index}]")


def _unstorable_in_json(value: object, path: str) -> Iterator[str]:
    if isinstance(value, str) and _UNSTORABLE.search(value):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unstorable_in_json(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, element in enumerate(value):
            yield from _unstorable_in_json(element, f"{path}[{index}]")


def _literal_arguments(document: DocumentNode) -> Iterator[tuple[str, ValueNode]]:
    stack: list[SelectionSetNode] = [
        d.selection_set for d in document.definitions if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                for argument in selection.arguments or ():
                    yield f"{selection.name.value}({argument.name.value})", argument.value
            if isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set is not None:
                stack.append(selection.selection_set)


def check_storable_strings(document: DocumentNode, raw_variables: Mapping[str, object] | None) -> None:
    """Refuse a string argument (literal or variable) that holds a character no database stores."""
    check_storable_variables(raw_variables)
    check_storable_literals(document)


def check_storable_variables(raw_variables: Mapping[str, object] | None) -> None:
    """Refuse a variable's string that holds a character no database stores (the request's part of the check)."""
    for name, value in (raw_variables or {}).items():
        for path in _unstorable_in_json(value, f"${name}"):
            raise BadUserInputError(f"Variable `{path}` {UNSTORABLE_MESSAGE}")


def check_storable_literals(document: DocumentNode) -> None:
    """Refuse a literal string (an argument or a variable's default) no database stores (the document's part)."""
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            for variable in definition.variable_definitions or ():
                if variable.default_value is not None:
                    for path in _unstorable_in_value(variable.default_value, f"${variable.variable.name.value}"):
                        raise BadUserInputError(f"Variable `{path}` {UNSTORABLE_MESSAGE}")
    for argument, value in _literal_arguments(document):
        for path in _unstorable_in_value(value, argument):
            raise BadUserInputError(f"Argument `{path}` {UNSTORABLE_MESSAGE}")


def cost_variables(document: DocumentNode) -> tuple[str, ...]:
    """Name the variables an operation's cost reads: page and list sizes, and `@skip`/`@include` conditions.

    The cost reads no other variable, so it is the same for every request that gives these the same values.
    """
    names: dict[str, None] = {}
    stack: list[ValueNode] = []
    for node in _fields_and_directives(document):
        if isinstance(node, FieldNode):
            stack.extend(argument.value for argument in node.arguments or () if argument.name.value in COST_ARGUMENTS)
        elif node.name.value in (GraphQLSkipDirective.name, GraphQLIncludeDirective.name):
            stack.extend(argument.value for argument in node.arguments or ())
    while stack:
        value = stack.pop()
        if isinstance(value, VariableNode):
            names[value.name.value] = None
        elif isinstance(value, ListValueNode):
            stack.extend(value.values)
        elif isinstance(value, ObjectValueNode):
            stack.extend(item.value for item in value.fields)
    return tuple(names)


def _fields_and_directives(document: DocumentNode) -> Iterator[FieldNode | DirectiveNode]:
    stack: list[SelectionSetNode] = [
        d.selection_set for d in document.definitions if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while stack:
        for selection in stack.pop().selections:
            yield from selection.directives or ()
            if isinstance(selection, FieldNode):
                yield selection
            if isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set is not None:
                stack.append(selection.selection_set)
