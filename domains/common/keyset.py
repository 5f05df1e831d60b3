"""Keyset (cursor) pagination over SQLAlchemy selects, for single lists and batched per parent.

A page is ordered by one sort key plus the primary key as tie-breaker, both in the same
direction, and continues strictly after (or before) the (key, id) pair held in a cursor.
Because the position is a value and not an offset, rows inserted between two requests
never make a page skip or repeat a row.

Cursors are opaque to clients: base64url of `[order_tag, key, id]`. The tag names the
ordering a cursor was made for, so a cursor from another ordering or a tampered one is
refused instead of silently returning the wrong page.
"""

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, Literal, TypeVar

import orjson
from sqlalchemy import ARRAY, ColumnElement, FromClause, Integer, Select, Subquery, bindparam, func, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from domains.common.exceptions import BadUserInputError

T = TypeVar("T")
KeyKind = Literal["datetime", "decimal", "str", "int"]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MALFORMED_CURSOR = "The cursor is malformed or was made for another ordering."


@dataclass(frozen=True, slots=True)
class SortKey:
    """One orderable column: its public tag, the column, and how its values travel in cursors."""

    tag: str
    column: InstrumentedAttribute[Any]
    kind: KeyKind


@dataclass(frozen=True, slots=True)
class Cursor:
    tag: str
    key: Any
    id: int


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Validated pagination arguments: a page size, a direction, and optional bounds.

    Hashed once: a page request is part of every page loader key, hashed a few times per parent
    (a TopProducts page: 50 parents).
    """

    size: int
    backward: bool
    after: Cursor | None
    before: Cursor | None
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.size, self.backward, self.after, self.before)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True, slots=True)
class Ordering:
    """A sort key and its direction; hashed once, as `PageRequest`."""

    key: SortKey
    descending: bool
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.key, self.descending)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def tag(self) -> str:
        return f"{self.key.tag}:{'DESC' if self.descending else 'ASC'}"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of rows, whether more rows lie on either side, and the cursor of each row on demand.

    A cursor is encoded only when asked for: most queries select the nodes of a page, not the cursor
    of every edge (a TopProducts page of 50 products with 5 reviews each spent 300 encodings on none).
    """

    rows: list[T]
    ordering: Ordering
    key_of: Callable[[T], tuple[Any, int]]
    has_next_page: bool
    has_previous_page: bool

    def cursor(self, index: int) -> str:
        """The opaque cursor of the row at `index` of this page."""
        return encode_cursor(self.ordering, *self.key_of(self.rows[index]))


def _encode_key(kind: KeyKind, value: Any) -> Any:
    if kind == "datetime":
        return value.isoformat()
    if kind == "decimal":
        return str(value)
    return value


def _decode_key(kind: KeyKind, value: Any) -> Any:
    if kind == "datetime" and isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(value)
        return parsed
    if kind == "decimal" and isinstance(value, str):
        return Decimal(value)
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(value)


def encode_cursor(ordering: Ordering, key: Any, row_id: int) -> str:
    """Return the opaque cursor of a row under an ordering."""
    raw = orjson.dumps([ordering.tag, _encode_key(ordering.key.kind, key), row_id])
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(ordering: Ordering, value: str) -> Cursor:
    """Parse a client's cursor, refusing one that is malformed or made for another ordering."""
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
        tag, key, row_id = orjson.loads(raw)
        if tag != ordering.tag or not isinstance(row_id, int) or isinstance(row_id, bool):
            raise ValueError(value)
        return Cursor(tag=tag, key=_decode_key(ordering.key.kind, key), id=row_id)
    except (ValueError, TypeError, UnicodeError, binascii.Error, InvalidOperation) as exc:
        raise BadUserInputError(MALFORMED_CURSOR) from exc


def page_request(
    ordering: Ordering,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    default_size: int = DEFAULT_PAGE_SIZE,
    max_size: int = MAX_PAGE_SIZE,
) -> PageRequest:
    """Validate Relay pagination arguments into a page request."""
    if first is not None and last is not None:
        msg = "Pass either `first` or `last`, not both."
        raise BadUserInputError(msg)
    count = first if first is not None else last
    if count is not None and not 0 <= count <= max_size:
        msg = f"`first` and `last` take a value from 0 to {max_size}."
        raise BadUserInputError(msg)
    return PageRequest(
        size=default_size if count is None else count,
        backward=last is not None,
        after=decode_cursor(ordering, after) if after is not None else None,
        before=decode_cursor(ordering, before) if before is not None else None,
    )


def _bounds(ordering: Ordering, id_column: InstrumentedAttribute[int], page: PageRequest) -> list[ColumnElement[bool]]:
    column = ordering.key.column
    pair = tuple_(column, id_column)

    def bound(name: str, cursor: Cursor) -> ColumnElement[Any]:
        # Named, typed binds: a datetime or decimal key is sent the way the column stores it,
        # and a cached statement takes the next page's values through `page_parameters`.
        return tuple_(
            bindparam(f"{name}_key", cursor.key, type_=column.type),
            bindparam(f"{name}_id", cursor.id, type_=id_column.type),
        )

    conditions: list[ColumnElement[bool]] = []
    if page.after is not None:
        after = bound("after", page.after)
        conditions.append(pair < after if ordering.descending else pair > after)
    if page.before is not None:
        before = bound("before", page.before)
        conditions.append(pair > before if ordering.descending else pair < before)
    return conditions


def page_shape(page: PageRequest) -> tuple[bool, bool, bool]:
    """What a page's statement depends on besides values: one statement serves every page of a shape."""
    return page.backward, page.after is not None, page.before is not None


def page_parameters(page: PageRequest) -> dict[str, Any]:
    """The bind values of a page, for a statement built for another page of the same shape."""
    parameters: dict[str, Any] = {"page_limit": page.size + 1}
    for name, cursor in (("after", page.after), ("before", page.before)):
        if cursor is not None:
            parameters[f"{name}_key"] = cursor.key
            parameters[f"{name}_id"] = cursor.id
    return parameters


def _order_by(ordering: Ordering, id_column: InstrumentedAttribute[int], page: PageRequest) -> list[ColumnElement[Any]]:
    # Fetching backwards reads the ordering reversed from the `before` bound, then flips the rows.
    descending = ordering.descending != page.backward
    columns = (ordering.key.column, id_column)
    return [column.desc() if descending else column.asc() for column in columns]


def keyset_select(
    stmt: Select[Any], ordering: Ordering, id_column: InstrumentedAttribute[int], page: PageRequest
) -> Select[Any]:
    """Bound, order and limit a select to one page (plus one row to tell if more follow).

    The limit is the named bind `page_limit`, as the bounds are: a statement built once per page
    shape takes another page's values through `page_parameters`.
    """
    return (
        stmt.where(*_bounds(ordering, id_column, page))
        .order_by(*_order_by(ordering, id_column, page))
        .limit(bindparam("page_limit", page.size + 1, type_=Integer))
    )


def keyset_window(
    stmt: Select[Any],
    partition: InstrumentedAttribute[Any],
    ordering: Ordering,
    id_column: InstrumentedAttribute[int],
    page: PageRequest,
) -> tuple[Subquery, ColumnElement[bool], list[ColumnElement[Any]]]:
    """Page a select per parent in one statement: ROW_NUMBER() over each parent's rows.

    Returns the numbered subquery of `stmt`, the condition keeping at most one page plus one
    row per parent, and the order (parent, position) to select its rows in.
    """
    position = (
        func.row_number()
        .over(partition_by=partition, order_by=_order_by(ordering, id_column, page))
        .label("page_position")
    )
    inner = stmt.where(*_bounds(ordering, id_column, page)).add_columns(position).subquery()
    on_page = inner.c.page_position <= bindparam("page_limit", page.size + 1)
    return inner, on_page, [inner.c[partition.key], inner.c.page_position]


def keyset_lateral(
    stmt: Select[Any],
    partition: InstrumentedAttribute[Any],
    ordering: Ordering,
    id_column: InstrumentedAttribute[int],
    page: PageRequest,
) -> tuple[FromClause, FromClause, list[ColumnElement[Any]]]:
    """Page a select per parent in one statement on PostgreSQL: a LATERAL page for each parent id.

    `keyset_window`'s result, read another way: for each id of the array bind `parent_ids`, the
    parent's rows are read in page order (an index on the partition, sort key and id serves them
    in order) and cut at the page's limit, instead of every row of every parent being read,
    sorted and numbered. A page of 5 reviews for each of 50 products: ~1.0 ms of PostgreSQL per
    statement against 1.6-2.5 ms (pgbench, prepared, on the bench's data), and PostgreSQL's
    planner no longer hashes the page to scan every user for their names. SQLite has no LATERAL.

    Returns the ids (select from it), the page of each (join it on true), and the order
    (parent, position) to select their rows in.
    """
    parents = (
        func.unnest(bindparam("parent_ids", type_=ARRAY(partition.type)))
        .table_valued("id")
        .render_derived(name="parents")
    )
    order = _order_by(ordering, id_column, page)
    position = func.row_number().over(order_by=order).label("page_position")
    paged = keyset_select(stmt.where(partition == parents.c.id), ordering, id_column, page).add_columns(position)
    lateral = paged.lateral("paged")
    return parents, lateral, [lateral.c[partition.key], lateral.c.page_position]


def to_page(
    rows: Sequence[T],
    ordering: Ordering,
    page: PageRequest,
    key_of: Callable[[T], tuple[Any, int]],
) -> Page[T]:
    """Trim the look-ahead row and restore the order of a backward read."""
    has_more = len(rows) > page.size
    kept = list(rows[: page.size])
    if page.backward:
        kept.reverse()
    if page.backward:
        return Page(kept, ordering, key_of, has_next_page=page.before is not None, has_previous_page=has_more)
    return Page(kept, ordering, key_of, has_next_page=has_more, has_previous_page=page.after is not None)


def attribute_key(ordering: Ordering) -> Callable[[Any], tuple[Any, int]]:
    """Return a function reading a row's (sort key, id) pair from its ORM attributes."""
    name = ordering.key.column.key

    def key_of(row: Any) -> tuple[Any, int]:
        return getattr(row, name), row.id

    return key_of


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Cursor",
    "Ordering",
    "Page",
    "PageRequest",
    "SortKey",
    "attribute_key",
    "decode_cursor",
    "encode_cursor",
    "keyset_lateral",
    "keyset_select",
    "keyset_window",
    "page_parameters",
    "page_request",
    "page_shape",
    "to_page",
]
