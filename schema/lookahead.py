"""Look ahead at what a query selects below a field, to warm the loaders one level at a time.

A resolver that returns a page of rows warms, in one batch per relation (schema/relations.py),
what the query will ask of those rows next (their category, their reviews, the reviews' authors). The
nested resolvers then find their loader futures already resolved and answer synchronously,
instead of each returning an awaitable: graphql-core's cost per awaitable field is what a
large page spends most of its time on. Prefetching is only ever an optimisation: a nested
resolver whose key was not prefetched loads it through the same loader, as before.
"""

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from strawberry.types.nodes import SelectedField, Selection

if TYPE_CHECKING:
    from schema.context import Info


def selections(info: "Info") -> list[Selection]:
    """Return what the query selects on the current field's value."""
    return [selection for field in info.selected_fields for selection in field.selections]


def fields(selected: Iterable[Selection]) -> Iterator[SelectedField]:
    """Yield the selected fields, looking through fragments."""
    for selection in selected:
        if isinstance(selection, SelectedField):
            yield selection
        else:
            yield from fields(selection.selections)


def named(selected: Iterable[Selection], name: str) -> list[SelectedField]:
    """Return every selection of the field `name` (aliases included)."""
    return [field for field in fields(selected) if field.name == name]


def below(selected: Iterable[Selection], name: str) -> list[Selection]:
    """Return what is selected under every selection of the field `name`."""
    return [selection for field in named(selected, name) for selection in field.selections]


def connection_nodes(selected: Iterable[Selection]) -> list[Selection]:
    """Return what a connection's selection asks of its nodes, via `edges.node` and `nodes`."""
    selected = list(selected)
    return below(below(selected, "edges"), "node") + below(selected, "nodes")
