"""The `Node` interface: every entity has an opaque global id that `node(id:)` resolves."""

from collections.abc import Sequence
from typing import Any, ClassVar, Self

import strawberry

from domains.common.ids import encode_global_id


@strawberry.interface(description="An object with a global id.")
class Node:
    # A plain value, not a resolver: computed once in `from_model`, it costs no resolver call
    # per object, which matters with hundreds of objects per response.
    id: strawberry.ID = strawberry.field(description="Opaque global id; `node(id:)` fetches the object again.")

    NODE_TYPE: ClassVar[str]

    @classmethod
    def global_id(cls, pk: int) -> strawberry.ID:
        """Return the global id of this type's row `pk`."""
        return strawberry.ID(encode_global_id(cls.NODE_TYPE, pk))

    @classmethod
    async def resolve_nodes(cls, info: Any, pks: Sequence[int]) -> Sequence[Self | None]:
        """Load the visible objects of these keys, None where one is missing or hidden."""
        raise NotImplementedError
