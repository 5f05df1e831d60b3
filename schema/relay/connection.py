"""The one generic keyset Relay connection every list field returns."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, Self, TypeVar

import strawberry

from domains.common.keyset import Page
from schema.cache_control import INHERIT_MAX_AGE
from schema.relay.node import Node

RowT = TypeVar("RowT")
NodeType = TypeVar("NodeType", bound=Node)

First = Annotated[
    int | None,
    strawberry.argument(description="Return the first n items after `after` (0–100, default 20)."),
]
After = Annotated[
    str | None,
    strawberry.argument(description="Return items after this cursor (from `pageInfo.endCursor` or an edge)."),
]
Last = Annotated[
    int | None,
    strawberry.argument(description="Return the last n items before `before` (0–100); not with `first`."),
]
Before = Annotated[
    str | None,
    strawberry.argument(description="Return items before this cursor (from `pageInfo.startCursor` or an edge)."),
]


def _start_cursor(self: "PageInfo") -> str | None:
    return self.page.cursor(0) if self.page.rows else None


def _end_cursor(self: "PageInfo") -> str | None:
    return self.page.cursor(-1) if self.page.rows else None


@strawberry.type(name="PageInfo", description="Information to aid in pagination.", directives=[INHERIT_MAX_AGE])
class PageInfo:
    """Relay's PageInfo (the fields and descriptions of Strawberry's), cached as long as its connection.

    Its cursors are encoded when selected, from the page: a TopProducts request encoded 100 for
    its 50 review pages and selected none (1.2 µs each, about 1 % of its CPU).
    """

    has_next_page: bool = strawberry.field(description="When paginating forwards, are there more items?")
    has_previous_page: bool = strawberry.field(description="When paginating backwards, are there more items?")
    start_cursor: str | None = strawberry.field(
        resolver=_start_cursor, description="When paginating backwards, the cursor to continue."
    )
    end_cursor: str | None = strawberry.field(
        resolver=_end_cursor, description="When paginating forwards, the cursor to continue."
    )
    page: strawberry.Private[Page[Any]]


def _edge_cursor(self: "Edge[Any]") -> str:
    """Encode an edge's cursor when it is selected, not for every edge of every page."""
    return self.page.cursor(self.index)


@strawberry.type(
    name="Edge", description="One item of a page, with the cursor of its position.", directives=[INHERIT_MAX_AGE]
)
class Edge(Generic[NodeType]):
    cursor: str = strawberry.field(
        resolver=_edge_cursor,
        description="Opaque position; pass it as `after` or `before`.",
    )
    node: NodeType = strawberry.field(description="The item.")
    # The page this edge is row `index` of: its cursor is encoded only when selected.
    page: strawberry.Private[Page[Any]]
    index: strawberry.Private[int]

    @classmethod
    def at(cls, page: Page[Any], index: int, node: NodeType) -> "Edge[NodeType]":
        """The edge of row `index` of a page: its three attributes set, without the dataclass's keyword `__init__`.

        Half the cost of `Edge(page=…, index=…, node=…)`; a TopProducts response makes 300 edges.
        """
        edge = cls.__new__(cls)
        edge.page, edge.index, edge.node = page, index, node
        return edge


@strawberry.type(
    name="Connection",
    description="A page of a list, with cursors to move to the next or previous page.",
    directives=[INHERIT_MAX_AGE],
)
class Connection(Generic[NodeType]):
    page_info: PageInfo = strawberry.field(description="Where this page lies in the whole list.")
    edges: list[Edge[NodeType]] = strawberry.field(description="The items of this page, with their cursors.")
    count_total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="The items of this page, without their cursors.")
    def nodes(self) -> list[NodeType]:
        return [edge.node for edge in self.edges]

    @strawberry.field(description="How many items the whole list holds; counted only when selected.")
    async def total_count(self) -> int:
        return await self.count_total()

    @classmethod
    def from_page(
        cls,
        page: Page[RowT],
        to_node: Callable[[RowT], NodeType],
        count_total: Callable[[], Awaitable[int]],
    ) -> Self:
        """Wrap a keyset page of rows as a connection of GraphQL nodes."""
        at = Edge.at
        edges: list[Edge[NodeType]] = [at(page, index, to_node(row)) for index, row in enumerate(page.rows)]
        page_info = PageInfo(has_next_page=page.has_next_page, has_previous_page=page.has_previous_page, page=page)
        return cls(page_info=page_info, edges=edges, count_total=count_total)
