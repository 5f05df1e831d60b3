"""Generate, once per compiled selection, the Python function that fills one object's response dict.

A plan's selection used to be walked field by field for every object it fills: per field a loop
step, a dispatch on the field's kind, and a call to complete even a plain string. A TopProducts
page fills about 1,000 objects and 2,000 fields. The generated function does the same work with
the decisions taken once, as graphql-jit does for graphql-js: each field is one straight-line
stretch that reads the attribute (`source.name`), checks a leaf's type inline and stores it; a
resolved field calls the same `Run` methods as before.

The source holds no text of the document or schema: every name, key and plan object reaches it
through the function's namespace (`k3`, `p3`, ...); only attribute names that are Python
identifiers are written into it, as attribute reads.
"""

import keyword
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graphql import GRAPHQL_MAX_INT, GRAPHQL_MIN_INT
from graphql.pyutils import Path

from schema.compiled.plan import ATTRIBUTE, DIRECT, TYPENAME, FieldPlan, Selection

if TYPE_CHECKING:
    from schema.compiled.run import Pending, Run, Task

Fill = Callable[["Run", Any, dict[str, Any], Path | None, "list[Task]", list[Any], "list[Pending]"], None]


def fill_of(selection: Selection, leaf: Callable[..., Any]) -> Fill:
    """The selection's fill function, generated on first use and kept on the selection."""
    fill = selection.fill
    if fill is None:
        fill = selection.fill = _generate(selection, leaf)
    return fill


def _generate(selection: Selection, leaf: Callable[..., Any]) -> Fill:
    namespace: dict[str, Any] = {
        "Path": Path,
        "_leaf": leaf,
        "parent": selection.type,
        "parent_name": selection.type.name,
        "MIN_INT": GRAPHQL_MIN_INT,
        "MAX_INT": GRAPHQL_MAX_INT,
    }
    lines = ["def fill(run, source, out, path, following, waiting, pending):"]
    for index, plan in enumerate(selection.fields):
        namespace[f"k{index}"] = plan.key
        namespace[f"p{index}"] = plan
        namespace[f"c{index}"] = plan.completion
        lines.extend(f"    {line}" for line in _field(index, plan, namespace))
    if len(lines) == 1:
        lines.append("    pass")
    exec(compile("\n".join(lines), f"<fill {selection.type.name}>", "exec"), namespace)  # noqa: S102 - see module doc
    fill: Fill = namespace["fill"]
    return fill


def _field(index: int, plan: FieldPlan, namespace: dict[str, Any]) -> list[str]:
    key, completion = f"k{index}", f"c{index}"
    if plan.kind == TYPENAME:
        return [f"out[{key}] = parent_name"]
    if plan.kind == ATTRIBUTE:
        read = _read(index, plan.attribute, namespace)
        if not plan.leaf:
            path = f"Path(path, {key}, parent_name)"
            return [f"out[{key}] = run._complete({completion}, {read}, p{index}, parent, {path}, None, following)"]
        passthrough = plan.completion.passthrough
        if passthrough is None:
            return [f"out[{key}] = _leaf({completion}, {read})"]
        namespace[f"t{index}"] = passthrough
        check = f"value.__class__ is t{index}"
        if passthrough is int:
            check += " and MIN_INT <= value <= MAX_INT"
        return [f"value = {read}", f"out[{key}] = value if {check} else _leaf({completion}, value)"]
    call = f"run._call(p{index}, source, info)" if plan.kind == DIRECT else f"run._resolve(p{index}, source, info)"
    return [
        f"field_path = Path(path, {key}, parent_name)",
        f"info = run.executor.build_resolve_info(p{index}.definition, p{index}.nodes, parent, field_path)",
        f"value = {call}",
        "if run.is_awaitable(value):",
        f"    out[{key}] = None",  # keeps the key's place in the response; filled in once awaited
        "    waiting.append(value)",
        f"    pending.append((out, p{index}, parent, field_path, info))",
        "else:",
        f"    out[{key}] = run._complete({completion}, value, p{index}, parent, field_path, info, following)",
    ]


def _read(index: int, attribute: str, namespace: dict[str, Any]) -> str:
    if attribute.isidentifier() and not keyword.iskeyword(attribute) and not attribute.startswith("__"):
        return f"source.{attribute}"
    namespace[f"a{index}"] = attribute
    return f"getattr(source, a{index})"
