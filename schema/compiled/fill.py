"""Generate, once per compiled selection, the Python function that fills one object's response dict.

A plan's selection used to be walked field by field for every object it fills: per field a loop
step, a dispatch on the field's kind, and a call to complete even a plain string. A TopProducts
page fills about 1,000 objects and 2,000 fields. The generated function does the same work with
the decisions taken once, as graphql-jit does for graphql-js: each field is one straight-line
stretch that reads the attribute (`source.name`), checks a leaf's type inline and stores it; a
resolved field calls the same `Run` methods as before. A selection read from rows (`Rows`) reads
each field by its `Leaf`, `One` or `Each` from the row itself instead.

The source holds no text of the document or schema: every name, key and plan object reaches it
through the function's namespace (`k3`, `p3`, ...); only attribute names that are Python
identifiers are written into it, as attribute reads.
"""

import keyword
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from graphql import GRAPHQL_MAX_INT, GRAPHQL_MIN_INT
from graphql.pyutils import Path, Undefined
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE

from schema.compiled.plan import (
    ATTRIBUTE,
    DEFINITION_BACKREF,
    DIRECT,
    LIST,
    OBJECT,
    RELATION,
    TYPENAME,
    FieldPlan,
    Selection,
)
from schema.relations import Each, Leaf, One, Related

if TYPE_CHECKING:
    from schema.compiled.run import Pending, Run, Task

Fill = Callable[["Run", Any, dict[str, Any], Path | None, "list[Task]", list[Any], "list[Pending]"], None]
Complete = Callable[["Run", list[tuple[Any, dict[str, Any], Path | None]], list[Any], "list[Task]"], None]


def fill_of(selection: Selection, leaf: Callable[..., Any], bail: type[Exception], relation: type[Any]) -> Fill:
    """The selection's fill function, generated on first use and kept on the selection."""
    fill = selection.fill
    if fill is None:
        fill = selection.fill = _generate(selection, leaf, bail, relation)
    return fill


def _namespace(parent: Any, leaf: Callable[..., Any], bail: type[Exception]) -> dict[str, Any]:
    """What every generated function of a selection on `parent` reads besides its own plans."""
    return {
        "Path": Path,
        "Undefined": Undefined,
        "Bail": bail,
        "_leaf": leaf,
        "parent": parent,
        "parent_name": parent.name,
        "MIN_INT": GRAPHQL_MIN_INT,
        "MAX_INT": GRAPHQL_MAX_INT,
    }


def _generate(selection: Selection, leaf: Callable[..., Any], bail: type[Exception], relation: type[Any]) -> Fill:
    namespace = _namespace(selection.type, leaf, bail)
    namespace["Relation"] = relation
    lines = ["def fill(run, source, out, path, following, waiting, pending):"]
    if any(plan.kind == RELATION for plan in selection.fields):
        lines.append("    relations = run.relations")
    field = _row_field if selection.from_rows else _field
    for index, plan in enumerate(selection.fields):
        namespace[f"k{index}"] = plan.key
        namespace[f"p{index}"] = plan
        namespace[f"c{index}"] = plan.completion
        lines.extend(f"    {line}" for line in field(index, plan, namespace))
    if len(lines) == 1:
        lines.append("    pass")
    exec(compile("\n".join(lines), f"<fill {selection.type.name}>", "exec"), namespace)  # noqa: S102 - see module doc
    fill: Fill = namespace["fill"]
    return fill


def completer_of(
    plan: FieldPlan, parent: Any, leaf: Callable[..., Any], bail: type[Exception], relation: type[Any]
) -> Complete:
    """The relation field's completer (its values for all parents into their dicts), generated on first use."""
    complete = plan.complete
    if complete is None:
        namespace = _namespace(parent, leaf, bail)
        namespace.update(k0=plan.key, p0=plan, c0=plan.completion, Relation=relation)
        lines = [
            "def complete(run, parents, values, following):",
            "    waiting = pending = None  # an object filled now calls no resolver (`_fills_now`)",
            "    for (source, out, field_path), value in zip(parents, values, strict=True):",
            *(f"        {line}" for line in _store(0, plan, namespace)),
        ]
        source = "\n".join(lines)
        exec(compile(source, f"<complete {parent.name}.{plan.key}>", "exec"), namespace)  # noqa: S102 - see module doc
        complete = plan.complete = namespace["complete"]
    return complete


def _field(index: int, plan: FieldPlan, namespace: dict[str, Any]) -> list[str]:
    key = f"k{index}"
    if plan.kind == TYPENAME:
        return [f"out[{key}] = parent_name"]
    if plan.kind == ATTRIBUTE:
        read = _read(index, plan.attribute, namespace)
        if not plan.leaf:
            return [f"value = {read}", _field_path(plan, key), *_store(index, plan, namespace)]
        return _leaf_store(index, plan, read, namespace)
    if plan.kind == RELATION:
        register = _register(index, plan)
        held = _held(plan)
        if held is None:
            return register
        namespace[f"h{index}"] = held
        return [
            f"value = h{index}(source)",
            "if value is None:",
            *(f"    {line}" for line in register),
            "else:",
            f"    {_field_path(plan, key)}",
            *(f"    {line}" for line in _store(index, plan, namespace)),
        ]
    call = f"run._resolve(p{index}, source, info)"
    if plan.kind == DIRECT:
        # A field with `RowsOf` gives the rows its selection is read from instead of its objects.
        call = f"run._call{'_rows' if plan.rows_of is not None else ''}(p{index}, source, info)"
    return [
        f"field_path = Path(path, {key}, parent_name)",
        f"info = run.executor.build_resolve_info(p{index}.definition, p{index}.nodes, parent, field_path)",
        f"value = {call}",
        "if run.is_awaitable(value):",
        f"    out[{key}] = None",  # keeps the key's place in the response; filled in once awaited
        "    waiting.append(value)",
        f"    pending.append((out, p{index}, parent, field_path, info))",
        "else:",
        *(f"    {line}" for line in _store(index, plan, namespace, info="info")),
    ]


def _register(index: int, plan: FieldPlan) -> list[str]:
    """Register `source` as a parent of the relation field, resolved for every parent of the level at once.

    After the level is filled (`Run._resolve_relations`).
    """
    key = f"k{index}"
    return [
        _field_path(plan, key),
        f"out[{key}] = None",  # keeps the key's place in the response
        f"relation = relations.get(p{index})",
        "if relation is None:",
        f"    relation = relations[p{index}] = Relation(p{index}, parent, [])",
        "relation.parents.append((source, out, field_path))",
    ]


def _fill_in(selection: Selection, namespace: dict[str, Any]) -> Fill:
    """The fill of a selection below, for a generated function with this namespace."""
    return fill_of(selection, namespace["_leaf"], namespace["Bail"], namespace["Relation"])


def _leaf_store(index: int, plan: FieldPlan, read: str, namespace: dict[str, Any]) -> list[str]:
    """Complete the leaf value `read` into `out`: a built-in scalar's type checked inline, any other by `_leaf`."""
    key, completion = f"k{index}", f"c{index}"
    passthrough = plan.completion.passthrough
    if passthrough is None:
        return [f"out[{key}] = _leaf({completion}, {read})"]
    namespace[f"t{index}"] = passthrough
    check = f"value.__class__ is t{index}"
    if passthrough is int:
        check += " and MIN_INT <= value <= MAX_INT"
    return [f"value = {read}", f"out[{key}] = value if {check} else _leaf({completion}, value)"]


def _row_field(index: int, plan: FieldPlan, namespace: dict[str, Any]) -> list[str]:
    """A field of a selection read from rows (`Rows`): `source` is the row (or page) its read reads.

    Nothing here calls a resolver, so every object below is filled at once, by its own generated function.
    """
    key, read, completion = f"k{index}", plan.read, plan.completion
    if plan.kind == TYPENAME:
        return [f"out[{key}] = parent_name"]
    if isinstance(read, Leaf):
        value = _read(index, read.attribute, namespace)
        if read.convert is not None:
            namespace[f"r{index}"] = read.convert
            value = f"r{index}({value})"
        return _leaf_store(index, plan, value, namespace)
    if isinstance(read, Related):
        return _register(index, plan)  # its relation reads each row's key (`Related.key`)
    if isinstance(read, One) and completion.selection is not None:
        namespace[f"f{index}"] = _fill_in(completion.selection, namespace)
        # The object is read from the same row: it is never null.
        return [
            _field_path(plan, key),
            "placed = {}",
            f"f{index}(run, source, placed, field_path, following, waiting, pending)",
            f"out[{key}] = placed",
        ]
    inner = completion.inner
    if isinstance(read, Each) and inner is not None and inner.selection is not None:
        namespace[f"f{index}"] = _fill_in(inner.selection, namespace)
        item_path = "Path(field_path, position, None)" if plan.path else "None"
        return [
            f"value = {_read(index, read.attribute, namespace)}",
            "if value is None:",
            "    raise Bail" if completion.non_null else f"    out[{key}] = None",
            "else:",
            f"    {_field_path(plan, key)}",
            "    items = []",
            "    for position, item in enumerate(value):",
            "        if item is None:",
            "            raise Bail" if inner.non_null else "            items.append(None)",
            "        else:",
            "            placed = {}",
            f"            f{index}(run, item, placed, {item_path}, following, waiting, pending)",
            "            items.append(placed)",
            f"    out[{key}] = items",
        ]
    return ["raise Bail"]  # pragma: no cover - the compiler marks no other field as read from rows


def _store(index: int, plan: FieldPlan, namespace: dict[str, Any], info: str = "None") -> list[str]:
    """Complete `value` into `out`: an object (or a list of objects) is placed inline, anything else by `Run`.

    Placing inline is what `Run._complete` and `Run._place` do for a value that is an object of the
    selection's type; every other value (null, an error, a value of another type) takes their path.
    An object of a selection that calls no resolver (`_fills_now`) is filled at once, by its own
    generated function; any other waits for the next level.
    """
    key, completion = f"k{index}", plan.completion
    slow = f"run._complete(c{index}, value, p{index}, parent, field_path, {info}, following)"
    inner = completion.inner
    if (plan.rows is not None or plan.rows_of is not None) and completion.selection is not None:
        # The field's value is the rows its selection is read from (`Rows`): filled now, as they are.
        namespace[f"f{index}"] = _fill_in(completion.selection, namespace)
        return [
            "if value is None:",
            "    raise Bail" if completion.non_null else f"    out[{key}] = None",
            "else:",
            "    placed = {}",
            f"    f{index}(run, value, placed, field_path, following, waiting, pending)",
            f"    out[{key}] = placed",
        ]
    if completion.kind == OBJECT and completion.selection is not None:
        namespace[f"s{index}"] = completion.selection
        return [
            "if value is None:",
            "    raise Bail" if completion.non_null else f"    out[{key}] = None",
            f"elif {_placeable(index, completion.selection, 'value', info, namespace)}:",
            "    placed = {}",
            f"    {_place_now(index, plan, completion.selection, 'value', 'field_path', namespace)}",
            f"    out[{key}] = placed",
            "else:",
            f"    out[{key}] = {slow}",
        ]
    if completion.kind == LIST and inner is not None and inner.kind == OBJECT and inner.selection is not None:
        namespace[f"s{index}"], namespace[f"i{index}"] = inner.selection, inner
        return [
            "if value.__class__ is list:",
            "    items = []",
            "    for position, item in enumerate(value):",
            "        item_path = Path(field_path, position, None)" if plan.path else "        item_path = None",
            f"        if item is not None and {_placeable(index, inner.selection, 'item', info, namespace)}:",
            "            placed = {}",
            f"            {_place_now(index, plan, inner.selection, 'item', 'item_path', namespace)}",
            "            items.append(placed)",
            "        else:",
            f"            done = run._complete_item(i{index}, item, p{index}, parent, item_path, {info}, following)",
            "            items.append(done)",
            f"    out[{key}] = items",
            "else:",
            f"    out[{key}] = {slow}",
        ]
    return [f"out[{key}] = {slow}"]


def _held(plan: FieldPlan) -> Callable[[Any], Any] | None:
    """The reader of the related object a parent may hold already (`OneField.held`), when it can be placed inline.

    A review made from a card holds its author (`Review.held_author`): placed as the review is filled,
    instead of registered as a relation, resolved for the level's reviews together and completed
    afterwards (a TopProducts page has 250). The relation's own `resolve_all` answers with the held
    objects only when every parent holds one, and else loads them all; the values are the same
    either way (the held object is made from the row the loader would load). Only for a selection of
    plain fields: one with relations of its own would have them batched at one level for parents
    that hold the object and at the next for those that do not.
    """
    held = getattr(plan.relation, "held", None)
    completion = plan.completion
    selection = completion.selection
    if held is None or plan.has_arguments or completion.kind != OBJECT or selection is None:
        return None
    if not all(field.kind in (ATTRIBUTE, TYPENAME) for field in selection.fields):
        return None
    return cast(Callable[[Any], Any], held)


def _fills_now(selection: Selection) -> bool:
    """Whether objects of this selection may be filled as soon as they are placed, not a level later.

    A level exists to gather its awaitables: the values of resolvers, and the relations of all its
    parents, loaded in one batch. A selection that calls no resolver adds no awaitable; its relation
    fields still wait for the rest of their level (`Run.relations`), and every object of a
    selection is filled at one time (the field placing it is read, or its relation completed, for
    all parents at once), so each relation still loads all its parents in one batch.
    """
    return all(plan.kind in (ATTRIBUTE, TYPENAME, RELATION) for plan in selection.fields)


def _place_now(
    index: int, plan: FieldPlan, selection: Selection, value: str, path: str, namespace: dict[str, Any]
) -> str:
    """The statement placing `value` into `placed`: filled now (`_fills_now`), or queued for the next level."""
    if plan.kind in (ATTRIBUTE, RELATION) and _fills_now(selection):
        namespace[f"f{index}"] = _fill_in(selection, namespace)
        return f"f{index}(run, {value}, placed, {path}, following, waiting, pending)"
    return f"following.append((s{index}, {value}, placed, {path}))"


def _field_path(plan: FieldPlan, key: str) -> str:
    """The field's response path, or None where nothing reads it (FieldPlan.path)."""
    return f"field_path = Path(path, {key}, parent_name)" if plan.path else "field_path = None"


def _placeable(index: int, selection: Selection, value: str, info: str, namespace: dict[str, Any]) -> str:
    """The condition under which `Run._place` would place this (non-null) value as an object of the selection.

    A value of exactly the Strawberry class the type was made from is placed without a call (a
    TopProducts page places about a thousand): Strawberry's generated `is_type_of` says yes to it
    unless it carries a `strawberry.cast` to another type, and graphql-core's checks without one
    (an error, Undefined, an awaitable) cannot hold for it. A type with its own `is_type_of`, a cast
    value or any other value takes the full check.
    """
    is_type_of = selection.type.is_type_of
    origin = _plain_origin(selection, generic=is_type_of is None)
    if origin is not None:
        namespace[f"t{index}o"] = origin
    if is_type_of is None:
        # graphql-core places any value but these (an error, Undefined; an awaitable item of a list)
        full = f"{value} is not Undefined and not isinstance({value}, Exception) and not run.is_awaitable({value})"
        return full if origin is None else f"({value}.__class__ is t{index}o or ({full}))"
    namespace[f"o{index}"] = is_type_of
    full = f"o{index}({value}, {info}) is True"
    if origin is None:
        return full
    namespace["CAST"] = TYPE_CAST_ATTRIBUTE
    return f"(({value}.__class__ is t{index}o and getattr({value}, CAST, None) is None) or {full})"


def _plain_origin(selection: Selection, *, generic: bool) -> type | None:
    """The Strawberry class of the selection's type, when a value of exactly it is always placed (`_placeable`).

    `generic`: the type has no `is_type_of`, so any value that is not an error or awaitable is placed,
    and for a specialised generic (`ReviewEdge`) the values are of the generic class (`Edge`).
    """
    definition = selection.type.extensions.get(DEFINITION_BACKREF)
    concrete_of = getattr(definition, "concrete_of", None)
    origin = getattr(concrete_of if generic and concrete_of is not None else definition, "origin", None)
    if not isinstance(origin, type) or getattr(definition, "is_type_of", None) is not None:
        return None  # not made by Strawberry from a class, or with an `is_type_of` of its own
    if issubclass(origin, BaseException) or hasattr(origin, "__await__"):
        return None
    return origin


def _read(index: int, attribute: str, namespace: dict[str, Any]) -> str:
    if attribute.isidentifier() and not keyword.iskeyword(attribute) and not attribute.startswith("__"):
        return f"source.{attribute}"
    namespace[f"a{index}"] = attribute
    return f"getattr(source, a{index})"
