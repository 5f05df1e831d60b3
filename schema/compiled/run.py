"""Run a compiled plan: one level at a time, for all the objects of that level together.

Per level, every field of every object is read (an attribute) or resolved (its resolver, with
graphql-core's own resolve info); a relation field is resolved for all the level's parents at once
(`RelationField.resolve_all`: one load per parent, no resolver call). The awaitables of the whole
level are gathered at once, so the loaders batch as they do under graphql-core, and a value already
loaded (warmed, joined) costs no awaitable at all. Values are completed into plain dicts and lists,
in graphql-core's field order. An object of a selection that calls no resolver is filled as soon
as it is placed (fill.py `_fills_now`): a level is a batch to wait for, not a depth of the document.

This path serves the operations that succeed. At the first sign of anything else (a resolver that
raises, a null where the schema promises a value, a value graphql-core would refuse) it gives up
with `Bail`, and the operation runs again through graphql-core, which reports it with every error's
path, locations and null propagation exactly as always. Queries only: running one twice reads twice.
"""

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from graphql import GRAPHQL_MAX_INT, GRAPHQL_MIN_INT, GraphQLObjectType, GraphQLResolveInfo, is_object_type
from graphql.execution.executor import Executor
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, Undefined, is_iterable
from strawberry.types.arguments import convert_arguments
from strawberry.types.unset import UNSET

from schema.compiled.fill import completer_of, fill_of
from schema.compiled.plan import (
    ABSTRACT,
    LEAF,
    LIST,
    OBJECT,
    Bindings,
    Compiler,
    Completion,
    FieldPlan,
    Selection,
)
from schema.relations import LEVEL_BATCHES, Related

ResolveInfo = GraphQLResolveInfo[Any]
# Argument values a resolver cannot change in place (UNSET: Strawberry's mark of an argument left out).
IMMUTABLE = frozenset({type(None), bool, int, float, str, Decimal, type(UNSET)})


class Bail(Exception):  # noqa: N818 - a verdict, not a failure
    """The compiled path gives this operation back to graphql-core."""


# One object to fill: its selection, its source value, the dict its fields go into, its response path.
Task = tuple[Selection, Any, dict[str, Any], Path | None]


@dataclass(slots=True, eq=False)
class Relation:
    """A relation field of one level: every parent it is selected on, the dict it goes to, its path.

    The path is None where nothing reads it (`FieldPlan.path`); a relation with arguments has one.
    """

    plan: FieldPlan
    parent: GraphQLObjectType
    parents: list[tuple[Any, dict[str, Any], Path | None]]


# One awaited value: the dict and key it goes to, the field, its parent type, the field's path and info;
# or a relation's values for all its parents.
Pending = tuple[dict[str, Any], FieldPlan, GraphQLObjectType, Path, ResolveInfo] | Relation
NO_ARGUMENTS: dict[str, Any] = {}


class Run:
    """One operation's compiled execution, against graphql-core's executor of it (variables, fragments)."""

    def __init__(self, executor: Executor[Any], bindings: Bindings) -> None:
        self.executor = executor
        self.bindings = bindings
        self.is_awaitable = executor.is_awaitable
        self._arguments: dict[int, dict[str, Any]] = {}
        self._converted: dict[int, dict[str, Any]] = {}
        # The relation fields of the level being filled, by plan (see fill.py).
        self.relations: dict[FieldPlan, Relation] = {}

    async def execute(self, root: Selection) -> dict[str, Any]:
        data: dict[str, Any] = {}
        tasks: list[Task] = [(root, self.executor.root_value, data, None)]
        batching = LEVEL_BATCHES.set(True)  # a page's resolver looks nothing ahead (relations.warm_page)
        try:
            # An object filled at once may leave relations for the next level with no object to fill.
            while tasks or self.relations:
                tasks = await self._level(tasks)
        finally:
            LEVEL_BATCHES.reset(batching)
        return data

    async def _level(self, tasks: list[Task]) -> list[Task]:
        following: list[Task] = []
        waiting: list[Awaitable[Any]] = []
        pending: list[Pending] = []
        try:
            for selection, source, out, path in tasks:
                fill = selection.fill or fill_of(selection, _leaf, Bail, Relation)
                fill(self, source, out, path, following, waiting, pending)
            if self.relations:
                self._resolve_relations(following, waiting, pending)
        except Exception as exc:
            _abandon(waiting)
            raise Bail from exc
        if not waiting:
            return following
        values: list[Any]
        if len(waiting) == 1:
            # One awaitable (a ProductById's every level): awaited as it is, without gather's task.
            try:
                values = [await waiting[0]]
            except Exception as exc:
                raise Bail from exc
        else:
            values = await asyncio.gather(*waiting, return_exceptions=True)
            for value in values:
                if isinstance(value, BaseException):
                    raise Bail from value
        try:
            for entry, value in zip(pending, values, strict=True):
                if isinstance(entry, Relation):
                    self._complete_relation(entry, value, following)
                else:
                    out, plan, parent, field_path, info = entry
                    if plan.rows_of is not None:
                        out[plan.key] = self._fill_rows(plan, value, field_path, following)
                    else:
                        out[plan.key] = self._complete(
                            plan.completion, value, plan, parent, field_path, info, following
                        )
        except Exception as exc:
            raise Bail from exc
        return following

    def _resolve_relations(self, following: list[Task], waiting: list[Awaitable[Any]], pending: list[Pending]) -> None:
        """Resolve each relation field of the level for all its parents: complete now, or wait with the level."""
        relations, self.relations = self.relations, {}
        loaders = self.executor.context_value.loaders
        for relation in relations.values():
            plan = relation.plan
            field = plan.relation
            if field is None:
                raise Bail  # pragma: no cover - the compiler makes every RELATION field so
            arguments = self._converted_arguments(plan, relation) if plan.has_arguments else NO_ARGUMENTS
            resolve = plan.rows or field.resolve_all  # rows for a selection read from them (`Rows`)
            parents = [source for source, _out, _path in relation.parents]
            read = plan.read  # the parents are rows, each keyed by `Related.key`
            keys = [read.key(parent) for parent in parents] if isinstance(read, Related) else None
            values = resolve(loaders, parents, arguments, keys)
            if self.is_awaitable(values):
                waiting.append(values)
                pending.append(relation)
            else:
                self._complete_relation(relation, cast(list[Any], values), following)

    def _complete_relation(self, relation: Relation, values: list[Any], following: list[Task]) -> None:
        plan = relation.plan
        complete = plan.complete or completer_of(plan, relation.parent, _leaf, Bail, Relation)
        complete(self, relation.parents, values, following)

    def _converted_arguments(self, plan: FieldPlan, relation: Relation) -> dict[str, Any]:
        """A relation field's converted arguments: the same for every parent (no argument depends on one)."""
        direct = plan.direct
        if direct is None:
            raise Bail  # pragma: no cover - the compiler gives every RELATION field its Direct
        converted = plan.converted if plan.literal else self._converted.get(id(plan))
        if converted is None:
            path = relation.parents[0][2]
            if path is None:
                raise Bail  # pragma: no cover - the compiler gives a relation with arguments its path
            raw_info = self.executor.build_resolve_info(plan.definition, plan.nodes, relation.parent, path)
            info = self.bindings.info_class(_raw_info=raw_info, _field=direct.field)
            converted = self._convert(plan, info)
        return converted

    def _convert(self, plan: FieldPlan, info: Any) -> dict[str, Any]:
        """Coerce and convert a field's arguments as Strawberry does; kept once made when nothing in them can change.

        Returns a dict the caller may change.
        """
        direct = plan.direct
        assert direct is not None  # noqa: S101 - only DIRECT and RELATION fields have arguments converted here
        kwargs = convert_arguments(
            self._arguments_of(plan),
            direct.field.arguments,
            scalar_registry=self.bindings.scalar_registry,
            config=self.bindings.config,
            info=info,
        )
        if _unchangeable(kwargs):
            # The same for every parent (and, without variables, every request), and nothing a resolver
            # could change: converted once.
            if plan.literal:
                plan.converted = kwargs
            else:
                self._converted[id(plan)] = kwargs
            return dict(kwargs)
        return kwargs

    def _resolve(self, plan: FieldPlan, source: Any, info: ResolveInfo) -> Any:
        """Call a field's own (Strawberry-wrapped) resolver, as graphql-core does."""
        resolve = plan.definition.resolve or self.executor.field_resolver
        return resolve(source, info, **self._arguments_of(plan))

    def _call(self, plan: FieldPlan, source: Any, raw_info: ResolveInfo) -> Any:
        """Call a resolver without field extensions as Strawberry's `from_resolver` does, minus its wrapping."""
        direct, bindings = plan.direct, self.bindings
        if direct is None:
            raise Bail  # pragma: no cover - the compiler makes every DIRECT field so
        info = bindings.info_class(_raw_info=raw_info, _field=direct.field)
        kwargs = self._kwargs(plan, info)
        args = [source] if direct.self_parameter else []
        if direct.parent is not None:
            kwargs[direct.parent] = source
        if direct.root is not None:
            kwargs[direct.root] = source
        if direct.info is not None:
            kwargs[direct.info] = info
        return direct.resolver(*args, **kwargs)

    def _call_rows(self, plan: FieldPlan, source: Any, raw_info: ResolveInfo) -> Any:
        """Call a field's `RowsOf` instead of its resolver: with the same `Info` and converted arguments."""
        direct, rows_of = plan.direct, plan.rows_of
        if direct is None or rows_of is None:
            raise Bail  # pragma: no cover - the compiler gives `rows_of` to DIRECT fields only
        info = self.bindings.info_class(_raw_info=raw_info, _field=direct.field)
        return rows_of.resolve(info, **self._kwargs(plan, info))

    def _kwargs(self, plan: FieldPlan, info: Any) -> dict[str, Any]:
        """A resolver's converted arguments, by their Python names, in a dict of its own."""
        if not plan.has_arguments:
            return {}
        converted = plan.converted if plan.literal else self._converted.get(id(plan))
        return self._convert(plan, info) if converted is None else dict(converted)

    def _fill_rows(self, plan: FieldPlan, value: Any, path: Path, following: list[Task]) -> dict[str, Any] | None:
        """Fill a field's selection from the rows its `RowsOf` gave (awaited)."""
        selection = plan.completion.selection
        if selection is None:
            raise Bail  # pragma: no cover - the compiler reads only an object's selection from rows
        if value is None:
            if plan.completion.non_null:
                raise Bail
            return None
        placed: dict[str, Any] = {}
        fill = selection.fill or fill_of(selection, _leaf, Bail, Relation)
        fill(self, value, placed, path, following, [], [])
        return placed

    def _arguments_of(self, plan: FieldPlan) -> dict[str, Any]:
        if not plan.has_arguments:
            return {}
        # Kept on the plan (literal and unchangeable), else for this run (a list one too: one per run).
        arguments = plan.arguments
        if arguments is None:
            arguments = self._arguments.get(id(plan))
        if arguments is None:
            first = plan.details[0]
            arguments = get_argument_values(
                plan.definition,
                first.node,
                self.executor.variable_values,
                first.fragment_variable_values,
                self.executor.hide_suggestions,
            )
            if plan.literal and _unchangeable(arguments):
                plan.arguments = arguments
            else:
                self._arguments[id(plan)] = arguments
        # Each call gets its own dict: a resolver may change the arguments it is given.
        return dict(arguments)

    def _complete(
        self,
        completion: Completion,
        value: Any,
        plan: FieldPlan,
        parent: GraphQLObjectType,
        path: Path,
        info: ResolveInfo | None,
        following: list[Task],
    ) -> Any:
        if value is None or value is Undefined:
            if completion.non_null:
                raise Bail
            return None
        if isinstance(value, Exception):
            raise Bail
        kind = completion.kind
        if kind == LEAF:
            return _leaf(completion, value)
        if kind == LIST:
            inner = completion.inner
            assert inner is not None  # noqa: S101 - built so by the compiler
            if self.executor.is_async_iterable(value) or not is_iterable(value):
                raise Bail
            return [
                self._complete_item(
                    inner, item, plan, parent, Path(path, index, None) if inner.composite else path, info, following
                )
                for index, item in enumerate(value)
            ]
        if kind == OBJECT:
            assert completion.selection is not None  # noqa: S101 - built so by the compiler
            return self._place(completion.selection, value, path, info, following)
        if kind == ABSTRACT:
            if info is None:
                info = self.executor.build_resolve_info(plan.definition, plan.nodes, parent, path)
            return self._abstract(completion, value, path, info, following)
        raise Bail  # pragma: no cover - the compiler builds no other kind

    def _complete_item(
        self,
        completion: Completion,
        item: Any,
        plan: FieldPlan,
        parent: GraphQLObjectType,
        path: Path,
        info: ResolveInfo | None,
        following: list[Task],
    ) -> Any:
        """Complete one item of a list (an awaitable item is not something this path runs)."""
        if self.is_awaitable(item):
            raise Bail
        return self._complete(completion, item, plan, parent, path, info, following)

    def _abstract(
        self, completion: Completion, value: Any, path: Path, info: ResolveInfo, following: list[Task]
    ) -> dict[str, Any]:
        executor = self.executor
        abstract = completion.type
        resolve_type = abstract.resolve_type or executor.type_resolver
        name = resolve_type(value, info, abstract)
        if not isinstance(name, str):
            raise Bail
        selection = completion.by_type.get(name)
        if selection is None:
            runtime_type = executor.schema.get_type(name)
            if not is_object_type(runtime_type) or not executor.schema.is_sub_type(abstract, runtime_type):
                raise Bail
            selection = Compiler(executor, self.bindings).sub_selection(runtime_type, completion.details)
            completion.by_type[name] = selection
        return self._place(selection, value, path, info, following)

    def _place(
        self,
        selection: Selection,
        value: Any,
        path: Path,
        info: ResolveInfo | None,
        following: list[Task],
    ) -> dict[str, Any]:
        is_type_of = selection.type.is_type_of
        if is_type_of is not None:
            verdict = is_type_of(value, cast(ResolveInfo, info))  # Strawberry's ignore the info
            if verdict is not True and (self.is_awaitable(verdict) or not verdict):
                raise Bail
        out: dict[str, Any] = {}
        following.append((selection, value, out, path))
        return out


def _leaf(completion: Completion, value: Any) -> Any:
    """Complete a leaf (or a non-null leaf): graphql-core's `complete_leaf_value`, or Bail where it errs."""
    if value is None or value is Undefined:
        if completion.non_null:
            raise Bail
        return None
    passthrough = completion.passthrough
    if (
        passthrough is not None
        and type(value) is passthrough
        and (passthrough is not int or GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT)
    ):
        return value
    if isinstance(value, Exception):
        raise Bail
    coerced = completion.type.coerce_output_value(value)
    if coerced is None or coerced is Undefined:
        raise Bail
    return coerced


def _unchangeable(arguments: dict[str, Any]) -> bool:
    return all(type(value) in IMMUTABLE for value in arguments.values())


def _abandon(waiting: list[Awaitable[Any]]) -> None:
    """Close the coroutines a level started before it gave up (futures stay: the loaders own them)."""
    for awaitable in waiting:
        close = getattr(awaitable, "close", None)
        if asyncio.iscoroutine(awaitable) and close is not None:
            close()
