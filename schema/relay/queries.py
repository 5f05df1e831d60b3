"""`node` and `nodes`: any entity by global id, through the same loaders and rules as typed fields."""

import asyncio
from typing import Annotated

import strawberry

from domains.common.exceptions import BadUserInputError
from domains.common.ids import MALFORMED_ID, decode_global_id
from schema.context import Info
from schema.relay.node import Node

MAX_NODES = 100


async def _resolve(info: Info, global_id: str) -> Node | None:
    type_name, pk = decode_global_id(global_id)
    definition = info.schema.get_type_by_name(type_name)
    origin = getattr(definition, "origin", None)
    if not isinstance(origin, type) or not issubclass(origin, Node) or origin is Node:
        raise BadUserInputError(MALFORMED_ID)
    (node,) = await origin.resolve_nodes(info, [pk])
    return node


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by its global id; null when it does not exist or is not visible to you.")
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")],
    ) -> Node | None:
        return await _resolve(info, id)

    @strawberry.field(
        description=(
            f"Objects by global id, in the order asked (at most {MAX_NODES}); "
            "null where one does not exist or is not visible."
        )
    )
    async def nodes(
        self,
        info: Info,
        ids: Annotated[list[strawberry.ID], strawberry.argument(description=f"Global ids, at most {MAX_NODES}.")],
    ) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            msg = f"`nodes` takes at most {MAX_NODES} ids."
            raise BadUserInputError(msg)
        for global_id in ids:
            decode_global_id(global_id)
        return list(await asyncio.gather(*(_resolve(info, global_id) for global_id in ids)))
