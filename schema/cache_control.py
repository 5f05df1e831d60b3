"""`@cacheControl`: the schema's HTTP cache hints, in Apollo Server's model, printed in the SDL.

A hint on a type applies to every field that returns it; a hint on a field overrides its type's.
A root field, and a field returning an object, count as `maxAge: 0` unless hinted (or their type
says `inheritMaxAge: true`); a scalar field follows its parent. An answer may be cached for the
smallest maxAge it selects, and by no cache but the client's own once it selects one PRIVATE field
or type. schema/extensions/cache_control.py computes that policy and decides which answers a shared
cache may keep; the edge (api/http_cache.py) follows that decision.
"""

from enum import Enum

import strawberry
from strawberry.schema_directive import Location
from strawberry.types.unset import UNSET

# How long a shared cache (a CDN, a reverse proxy) may answer for the catalog, in seconds: what a
# shopper may see out of date, traded against the queries the database is spared.
# Prices and `inStock` change with staff edits and with every order that takes the last unit.
PRODUCT_MAX_AGE = 60
# Reviews come and go with customers; a product's rating follows its product (60 s).
REVIEW_MAX_AGE = 120
# The category tree changes by staff edits only, and rarely.
CATEGORY_MAX_AGE = 300
# The public face of an account (its name, since when), as a review's author: nearly never changes.
USER_MAX_AGE = 300


@strawberry.enum(name="CacheControlScope", description="Which caches may keep an answer (`@cacheControl`).")
class CacheControlScope(Enum):
    PUBLIC = strawberry.enum_value("PUBLIC", description="Any cache, shared ones too (a CDN, a proxy).")
    PRIVATE = strawberry.enum_value(
        "PRIVATE", description="Only the asking client's own: the answer depends on who asks."
    )


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION, Location.OBJECT, Location.INTERFACE, Location.UNION],
    name="cacheControl",
    description=(
        "Apollo Server's cache hint: how long (`maxAge`, seconds) and by whom (`scope`) an answer selecting this "
        "type or field may be cached; `inheritMaxAge`: as long as its parent field. Only an anonymous GET query "
        "is ever cached by shared caches: for the smallest maxAge it selects, unless it selects a PRIVATE one."
    ),
)
class CacheControl:
    max_age: int | None = UNSET
    scope: CacheControlScope | None = UNSET
    inherit_max_age: bool | None = UNSET


# Viewer-dependent: whatever else the answer selects, no shared cache may keep it.
PRIVATE = CacheControl(scope=CacheControlScope.PRIVATE)
# Wrappers and value types (connections, edges, page info, money, a rating): as old as their parent.
INHERIT_MAX_AGE = CacheControl(inherit_max_age=True)
