"""Compile a validated query into a plan: per selection level, the fields, how each is read and completed.

The plan of a (document, operation name) holds, for each object type and selection, the fields
graphql-core's own `collect_fields` collects (aliases, fragments, `@skip`/`@include`), in the same
order, and decides once per field:
- a plain field (no resolver, no permission classes: Strawberry's `_is_default` resolver) is read
  with `getattr`, as Strawberry's default resolver does;
- `__typename` is the parent type's name;
- a field with a resolver and no field extensions (permission classes) calls that resolver as Strawberry
  would, with the same Strawberry `Info` and converted arguments, without Strawberry's per-call wrapping;
- a relation field (a `RelationField` in its metadata, schema/relations.py) is resolved for every
  parent of its level at once, by the relation's `resolve_all`; when its whole selection reads only
  what the relation's `Rows` read, by its `resolve_rows` instead, and the selection is filled from
  those rows as they are (`Selection.from_rows`), without a GraphQL object per row; a relation
  field of such a row is resolved with the rows as parents (`Related`); a field with a `RowsOf` in its
  metadata (the root `products`) is resolved to rows the same way, by it instead of its resolver;
- any other field calls its real (Strawberry-wrapped) resolver with graphql-core's own resolve info;
- its value is completed by a `Completion` tree (non-null, list, leaf, object, abstract type) that
  follows graphql-core's `complete_value`.

Response paths are made only where something reads them: the resolve info of a field with a
resolver (and of a relation field whose arguments are converted, and of an abstract type's value).
The compiled path reports no error itself (it gives the operation back to graphql-core), so a
selection with nothing of that kind below it gets no paths (`Selection.paths`, `FieldPlan.path`).

`@skip`/`@include` depend on variables, so a plan is kept per value of the variables they name.
Anything a plan cannot express raises `NotCompilable`: the operation runs through graphql-core.
"""

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    ValueNode,
    VariableNode,
    Visitor,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    visit,
)
from graphql.execution.collect_fields import CollectedFields, FieldDetails, collect_fields, collect_subfields
from graphql.execution.executor import Executor
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver

from schema.relations import (
    RELATION_FIELD,
    ROWS_OF,
    Each,
    Leaf,
    One,
    OneField,
    PageOfField,
    Reads,
    Related,
    RelationField,
    Rows,
    RowsOf,
)

# A field declared with `metadata={NOT_COMPILABLE: True}` sends every operation selecting it to graphql-core.
NOT_COMPILABLE = "graphql_not_compilable"
DEFINITION_BACKREF = "strawberry-definition"  # Strawberry's GraphQLCoreConverter.DEFINITION_BACKREF

ATTRIBUTE, RESOLVER, TYPENAME, DIRECT, RELATION = 0, 1, 2, 3, 4
LIST, LEAF, OBJECT, ABSTRACT = 1, 2, 3, 4


# graphql-core's String and ID coercion returns a str as it is, Boolean's a bool; Int's an int in range.
BUILT_IN = (GraphQLString, GraphQLID, GraphQLBoolean, GraphQLInt)
PASSTHROUGH: dict[str, type] = {"String": str, "ID": str, "Boolean": bool, "Int": int}


class NotCompilable(Exception):  # noqa: N818 - a verdict, not a failure
    """The operation selects something the compiled path does not run (introspection, a marked field)."""


@dataclass(slots=True, eq=False)
class Completion:
    """How a field's value of one GraphQL type is completed, as graphql-core's `complete_value` does."""

    kind: int
    # The named (or list) type; a non-null type is the same completion with `non_null` set.
    type: Any
    non_null: bool = False
    inner: "Completion | None" = None
    # OBJECT: the selection on the type; ABSTRACT: per runtime type name, compiled when first met.
    selection: "Selection | None" = None
    by_type: dict[str, "Selection"] = field(default_factory=dict)
    details: list[FieldDetails] = field(default_factory=list)
    # Whether completing a value of this type places objects (so it needs a response path).
    composite: bool = False
    # LEAF of a built-in scalar: the one Python type its coercion hands back unchanged (None: always coerce).
    passthrough: type | None = None


@dataclass(frozen=True, slots=True)
class Bindings:
    """What of the Strawberry schema the plans read fields and call resolvers with."""

    # Strawberry's default resolver is `getattr` (its StrawberryConfig default).
    plain_getattr: bool
    # No exception handlers (Strawberry wraps fields in them otherwise): resolvers may be called directly.
    direct: bool
    info_class: type[Any]
    config: Any
    scalar_registry: Mapping[object, Any]


@dataclass(slots=True, eq=False)
class Direct:
    """A resolver called directly, with its reserved parameters as Strawberry's `get_arguments` fills them in."""

    field: StrawberryField
    resolver: StrawberryResolver[Any]
    self_parameter: bool
    parent: str | None
    root: str | None
    info: str | None


@dataclass(slots=True, eq=False)
class FieldPlan:
    key: str
    kind: int
    definition: GraphQLField
    nodes: list[FieldNode]
    details: list[FieldDetails]
    attribute: str
    has_arguments: bool
    completion: Completion
    # A leaf or non-null leaf: completed without a response path.
    leaf: bool
    direct: Direct | None = None
    # No variable in its arguments: they are the same for every request this plan serves, so their
    # coerced and converted values are kept here once made (when nothing in them can be changed).
    literal: bool = False
    arguments: dict[str, Any] | None = None
    converted: dict[str, Any] | None = None
    # RELATION: the field's resolver for all parents of a level, and its generated completer (fill.py).
    relation: RelationField | None = None
    complete: Callable[..., None] | None = None
    # Whether anything reads this field's response path (and so the paths below it); see the module doc.
    path: bool = True
    # Its value is rows its selection is read from (`Rows`): a RELATION's by its relation's `resolve_rows`,
    # a DIRECT field's by its `RowsOf` (`rows_of`), called instead of its resolver.
    rows: Callable[..., list[Any] | Awaitable[list[Any]]] | None = None
    rows_of: RowsOf | None = None
    # A field of a selection read from rows (`Selection.from_rows`): how it is read.
    read: Leaf | One | Each | Related | None = None


@dataclass(slots=True, eq=False)
class Selection:
    """The fields selected on one object type at one place of the document."""

    type: GraphQLObjectType
    fields: list[FieldPlan]
    # The generated function that fills an object of this selection (schema/compiled/fill.py), once used.
    fill: Callable[..., None] | None = None
    # Whether any field of it reads its response path (else its objects are placed without one).
    paths: bool = True
    # Its fields are read from a relation's rows, each by its `FieldPlan.read`, not from GraphQL objects.
    from_rows: bool = False


class Compiler:
    """Build `Selection`s with graphql-core's field collection, for one executor's fragments and variables."""

    def __init__(self, executor: Executor[Any], bindings: Bindings) -> None:
        self.executor = executor
        self.bindings = bindings

    def root(self) -> Selection:
        executor = self.executor
        operation = executor.operation
        root_type = executor.schema.query_type
        if operation.operation.value != "query" or root_type is None:
            raise NotCompilable(operation.operation.value)
        e = executor
        collected = collect_fields(e.schema, e.fragments, e.variable_values, root_type, operation, e.hide_suggestions)
        return self._selection(root_type, _grouped(collected))

    def sub_selection(self, object_type: GraphQLObjectType, details: list[FieldDetails]) -> Selection:
        e = self.executor
        collected = collect_subfields(
            e.schema, e.fragments, e.variable_values, e.operation, object_type, details, e.hide_suggestions
        )
        return self._selection(object_type, _grouped(collected))

    def _selection(self, object_type: GraphQLObjectType, grouped: Mapping[str, list[FieldDetails]]) -> Selection:
        plans = []
        for key, details in grouped.items():
            plan = self._field(object_type, key, details)
            if plan is not None:
                plan.path = _reads_path(plan)
                plans.append(plan)
        return Selection(object_type, plans, paths=any(plan.path for plan in plans))

    def _field(self, parent: GraphQLObjectType, key: str, details: list[FieldDetails]) -> FieldPlan | None:
        if any(detail.fragment_variable_values is not None for detail in details):
            raise NotCompilable("fragment arguments")
        nodes = [detail.node for detail in details]
        name = nodes[0].name.value
        definition = self.executor.schema.get_field(parent, name)
        if definition is None:
            return None  # graphql-core leaves an unknown field out too (validation refuses it first)
        if definition is SchemaMetaFieldDef or definition is TypeMetaFieldDef:
            raise NotCompilable("introspection")
        strawberry_field = (definition.extensions or {}).get(DEFINITION_BACKREF)
        if isinstance(strawberry_field, StrawberryField) and strawberry_field.metadata.get(NOT_COMPILABLE):
            raise NotCompilable(f"{parent.name}.{name}")
        has_arguments = bool(definition.args or nodes[0].arguments)
        kind, attribute, direct, relation = RESOLVER, "", None, None
        if name == "__typename":
            kind = TYPENAME
        elif isinstance(strawberry_field, StrawberryField):
            resolver = strawberry_field.base_resolver
            if self.bindings.plain_getattr and getattr(definition.resolve, "_is_default", False) and not has_arguments:
                kind, attribute = ATTRIBUTE, strawberry_field.python_name
            elif self.bindings.direct and resolver is not None and not strawberry_field.extensions:
                relation = strawberry_field.metadata.get(RELATION_FIELD)
                kind = DIRECT if relation is None else RELATION
                direct = Direct(
                    field=strawberry_field,
                    resolver=resolver,
                    self_parameter=resolver.self_parameter is not None,
                    parent=resolver.parent_parameter.name if resolver.parent_parameter else None,
                    root=resolver.root_parameter.name if resolver.root_parameter else None,
                    info=resolver.info_parameter.name if resolver.info_parameter else None,
                )
        completion = self._completion(definition.type, details)
        # The narrowest resolver whose reads cover the selection (each narrower may have a narrower one).
        while relation is not None and relation.narrower is not None:
            if not _reads_within(completion, relation.narrower.reads):
                break
            relation = relation.narrower.field
        rows, rows_of = None, None
        if (
            isinstance(relation, PageOfField | OneField)
            and relation.rows is not None
            and _readable(completion, relation.rows)
        ):
            _read_from_rows(completion, relation.rows)
            rows = relation.resolve_rows
        elif kind == DIRECT and isinstance(strawberry_field, StrawberryField):
            rows_of = strawberry_field.metadata.get(ROWS_OF)
            if isinstance(rows_of, RowsOf) and _readable(completion, rows_of.rows):
                _read_from_rows(completion, rows_of.rows)
            else:
                rows_of = None
        leaf = completion.kind == LEAF
        literal = not any(_reads_variable(argument.value) for argument in nodes[0].arguments or ())
        return FieldPlan(
            key,
            kind,
            definition,
            nodes,
            details,
            attribute,
            has_arguments,
            completion,
            leaf,
            direct,
            literal,
            relation=relation,
            rows=rows,
            rows_of=rows_of,
        )

    def _completion(self, type_: GraphQLOutputType, details: list[FieldDetails]) -> Completion:
        if is_non_null_type(type_):
            completion = self._completion(type_.of_type, details)
            completion.non_null = True
            return completion
        if is_list_type(type_):
            inner = self._completion(type_.of_type, details)
            return Completion(LIST, type_, inner=inner, composite=inner.composite)
        if is_leaf_type(type_):
            return Completion(LEAF, type_, passthrough=PASSTHROUGH.get(type_.name) if type_ in BUILT_IN else None)
        if is_object_type(type_):
            return Completion(OBJECT, type_, selection=self.sub_selection(type_, details), composite=True)
        if is_abstract_type(type_):
            return Completion(ABSTRACT, type_, details=details, composite=True)
        raise NotCompilable(str(type_))  # pragma: no cover - every output type is one of the above


def _reads_path(plan: FieldPlan) -> bool:
    """Whether the field's response path is read: by its own resolve info, or by something below it."""
    if plan.kind in (RESOLVER, DIRECT) or (plan.kind == RELATION and plan.has_arguments):
        return True
    completion: Completion | None = plan.completion
    while completion is not None and completion.kind == LIST:
        completion = completion.inner
    if completion is None or completion.kind == ABSTRACT:
        return True  # an abstract type's value is resolved with a resolve info (a runtime type compiled later)
    if completion.kind == OBJECT:
        return completion.selection is None or completion.selection.paths
    return False


def _reads_within(completion: Completion, reads: Reads) -> bool:
    """Whether the selection below a field reads no more than `reads` (a narrower resolver serves it)."""
    while completion.kind == LIST and completion.inner is not None:
        completion = completion.inner
    if completion.kind == LEAF:
        return True
    if completion.kind != OBJECT or completion.selection is None:
        return False  # an abstract type's selections are compiled later, per runtime type
    for plan in completion.selection.fields:
        name = plan.nodes[0].name.value
        if name not in reads:
            return False
        below = reads[name]
        if below is not None and not _reads_within(plan.completion, below):
            return False
    return True


def _readable(completion: Completion, rows: Rows) -> bool:
    """Whether every field of the object selection below a field is read from rows by `rows` (and the same below).

    A field with arguments, or with permission classes (a RESOLVER), is not: its value is its resolver's;
    a relation field read as `Related` is, whatever its arguments and selection.
    """
    selection = completion.selection
    if completion.kind != OBJECT or selection is None:
        return False
    for plan in selection.fields:
        if plan.kind == TYPENAME:
            continue
        read = rows.fields.get(plan.nodes[0].name.value)
        if read is None or plan.kind not in (ATTRIBUTE, DIRECT, RELATION):
            return False
        if isinstance(read, Related):
            # Resolved by its relation, with the rows as parents: its own arguments and selection are its own.
            if plan.kind != RELATION:
                return False
            continue
        if plan.has_arguments:
            return False
        below = plan.completion
        if isinstance(read, Leaf):
            readable = below.kind == LEAF
        elif isinstance(read, One):
            readable = _readable(below, read.rows)
        else:
            readable = below.kind == LIST and below.inner is not None and _readable(below.inner, read.rows)
        if not readable:
            return False
    return True


def _read_from_rows(completion: Completion, rows: Rows) -> None:
    """Mark the selection below a field (`_readable` by `rows`) as read from rows, each field by its read."""
    selection = completion.selection
    assert selection is not None  # noqa: S101 - `_readable` said so
    selection.from_rows = True
    for plan in selection.fields:
        if plan.kind == TYPENAME:
            continue
        plan.read = read = rows.fields[plan.nodes[0].name.value]
        if isinstance(read, One):
            _read_from_rows(plan.completion, read.rows)
        elif isinstance(read, Each) and plan.completion.inner is not None:
            _read_from_rows(plan.completion.inner, read.rows)


def _reads_variable(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(_reads_variable(item) for item in value.values)
    if isinstance(value, ObjectValueNode):
        return any(_reads_variable(item.value) for item in value.fields)
    return False


def _grouped(collected: CollectedFields) -> Mapping[str, list[FieldDetails]]:
    if collected.new_defer_usages:
        raise NotCompilable("@defer")
    return collected.grouped_field_set


def directive_variables(document: DocumentNode) -> tuple[str, ...]:
    """Name the variables the document's `@skip`/`@include` read (so a plan is kept per their values)."""
    names: list[str] = []

    class _Directives(Visitor):
        def enter_directive(self, node: DirectiveNode, *_args: Any) -> None:
            if node.name.value in ("skip", "include"):
                for argument in node.arguments or ():
                    if isinstance(argument.value, VariableNode) and argument.value.name.value not in names:
                        names.append(argument.value.name.value)

    visit(document, _Directives())
    return tuple(names)


def frozen(value: Any) -> Hashable:
    """A hashable stand-in for a coerced variable's value (dicts and lists become tuples)."""
    if isinstance(value, dict):
        return tuple(sorted((key, frozen(item)) for key, item in value.items()))
    if isinstance(value, list):
        return tuple(frozen(item) for item in value)
    return value if isinstance(value, Hashable) else repr(value)


@dataclass(slots=True, eq=False)
class DocumentPlans:
    """The plans of one (document, operation name): one per value of the `@skip`/`@include` variables."""

    variables: tuple[str, ...]
    # None: the operation is not compilable with these values (introspection, a mutation, ...).
    roots: "OrderedDict[Hashable, Selection | None]" = field(default_factory=OrderedDict)


class PlanCache:
    """A bounded LRU of plans by (document text, operation name), then by `@skip`/`@include` values."""

    PER_DOCUMENT = 16

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._documents: OrderedDict[tuple[str, str | None], DocumentPlans] = OrderedDict()

    def root(
        self, query: str, operation: OperationDefinitionNode, executor: Executor[Any], bindings: Bindings
    ) -> Selection:
        """The root selection for this executor's variables; raises NotCompilable (remembered) when there is none."""
        name = operation.name.value if operation.name else None
        key = (query, name)
        plans = self._documents.get(key)
        if plans is None:
            document = DocumentNode(definitions=(operation, *executor.fragment_definitions.values()))
            plans = DocumentPlans(directive_variables(document))
            self._documents[key] = plans
            if len(self._documents) > self.maxsize:
                self._documents.popitem(last=False)
        else:
            self._documents.move_to_end(key)
        coerced = executor.variable_values.coerced
        values = tuple(frozen(coerced.get(variable)) for variable in plans.variables)
        if values in plans.roots:
            root = plans.roots[values]
        else:
            try:
                root = Compiler(executor, bindings).root()
            except NotCompilable:
                root = None
            plans.roots[values] = root
            if len(plans.roots) > self.PER_DOCUMENT:
                plans.roots.popitem(last=False)
        if root is None:
            raise NotCompilable(name or "anonymous")
        return root
