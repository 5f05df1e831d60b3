"""The `Node` interface: every entity has an opaque global id that `node(id:)` resolves."""

from collections.abc import Callable, Sequence
from functools import lru_cache, partial
from typing import Any, ClassVar, Self, cast

import strawberry

from domains.common.ids import encode_global_id

# The ids of the rows served lately, kept: a page read again (the first page of a list, a popular
# product's reviews) has its ids at hand instead of encoded anew (a TopProducts response holds 600;
# the cache's lookup costs a third of an encoding). Bounded: 4,096 ids are about a megabyte.
IDS_KEPT = 4096
# `strawberry.ID` is a NewType, the string itself at run time: the encoder is typed as returning it
# once, here, instead of a `cast` call per id.
_encode_id = cast(Callable[[str, int], strawberry.ID], lru_cache(maxsize=IDS_KEPT)(encode_global_id))


def id_encoder(node_type: str) -> Callable[[int], strawberry.ID]:
    """The global id of a row of one node type, from its key: `Node.global_id` without a Python call per id."""
    return partial(_encode_id, node_type)


@strawberry.interface(description="An object with a global id.")
class Node:
    # A plain value, not a resolver: computed once in `from_model`, it costs no resolver call
    # per object, which matters with hundreds of objects per response.
    id: strawberry.ID = strawberry.field(description="Opaque global id; `node(id:)` fetches the object again.")

    NODE_TYPE: ClassVar[str]

    @classmethod
    def from_model(cls, row: Any) -> Self:
        """Build the GraphQL object from its row: an explicit allow-list of fields."""
        raise NotImplementedError

    @classmethod
    def from_optional(cls, row: Any) -> Self | None:
        """Build the object, or None for a missing (or invisible) row."""
        return None if row is None else cls.from_model(row)

    @classmethod
    def from_required(cls, row: Any) -> Self:
        """Build the object of a row that a non-null field points at; its absence is a bug."""
        if row is None:
            msg = f"a {cls.NODE_TYPE} row that a non-null field points at is missing or hidden"
            raise LookupError(msg)
        return cls.from_model(row)

    @classmethod
    def global_id(cls, pk: int) -> strawberry.ID:
        """Return the global id of this type's row `pk`."""
        return _encode_id(cls.NODE_TYPE, pk)

    @classmethod
    async def resolve_nodes(cls, info: Any, pks: Sequence[int]) -> Sequence[Self | None]:
        """Load the visible objects of these keys, None where one is missing or hidden."""
        raise NotImplementedError
