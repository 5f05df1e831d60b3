"""GraphQL types of accounts."""

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Self

import strawberry
from strawberry.types.lazy_type import LazyType

from domains.common.principal import ROLE_DESCRIPTIONS
from domains.common.principal import Role as RoleValue
from domains.orders import repository as orders_repository
from domains.products import repository as products_repository
from domains.users import models
from schema.cache_control import PRIVATE, USER_MAX_AGE, CacheControl
from schema.context import Info
from schema.enums import described_enum
from schema.loaders import AwaitableOrValue
from schema.orders.loaders import CUSTOMER_ORDERS
from schema.permissions import IsSelfOrStaff, visible_to
from schema.products.loaders import USER_REVIEWS
from schema.relations import fixed_order
from schema.relay.connection import After, Before, Connection, First, Last
from schema.relay.node import Node

if TYPE_CHECKING:
    from schema.orders.types import Order
    from schema.products.types import Review

# Orders and reviews import this module (an order's customer, a review's author), so it names
# theirs lazily, as Strawberry resolves the annotations: by module path, when first used.
ReviewRef = Annotated["Review", strawberry.lazy("schema.products.types")]
OrderRef = Annotated["Order", strawberry.lazy("schema.orders.types")]
_REVIEW: "LazyType[str, str]" = LazyType("Review", "schema.products.types")
_ORDER: "LazyType[str, str]" = LazyType("Order", "schema.orders.types")


def _order_type() -> type["Order"]:
    order: type[Order] = _ORDER.resolve_type()
    return order


def _review_type() -> type["Review"]:
    review: type[Review] = _REVIEW.resolve_type()
    return review


# Each relation field's resolver (schema/relations.py); types of other modules are named in lambdas.
_CUSTOMER_ORDERS = CUSTOMER_ORDERS.resolver(
    key=lambda user: user.pk,
    page=fixed_order(orders_repository.ORDER_ORDERING),
    convert=lambda row: _order_type().from_model(row),
)
_USER_REVIEWS = USER_REVIEWS.resolver(
    key=lambda user: user.pk,
    page=fixed_order(products_repository.NEWEST_REVIEWS_FIRST),
    convert=lambda row: _review_type().from_model(row),
)


Role = described_enum(
    RoleValue,
    name="Role",
    description="What an account may do; each role includes the ones below it.",
    values=ROLE_DESCRIPTIONS,
)


@strawberry.type(
    description="An account. Its e-mail, roles and orders are visible to the user and staff only.",
    directives=[CacheControl(max_age=USER_MAX_AGE)],
)
class User(Node):
    NODE_TYPE = "User"

    pk: strawberry.Private[int]
    name: str = strawberry.field(description="Display name.")
    created_at: datetime = strawberry.field(description="When the account was registered.")
    private_email: strawberry.Private[str]
    private_roles: strawberry.Private[list[str]]
    # Set on the account a sign-up or sign-in of this very request proved it holds: the caller is still
    # anonymous, yet it is theirs.
    proven_by_caller: strawberry.Private[bool] = False

    @classmethod
    def from_card(cls, pk: int, name: str) -> Self:
        """The author of a review card: its id and name only (reading anything else raises; see `Narrower`)."""
        user = cls.__new__(cls)
        user.id = cls.global_id(pk)
        user.pk = pk
        user.name = name
        return user

    @classmethod
    def from_model(cls, row: models.UserView) -> Self:
        return cls(
            id=cls.global_id(row.id),
            pk=row.id,
            name=row.name,
            created_at=row.created_at,
            private_email=row.email,
            private_roles=row.roles,
        )

    @classmethod
    async def resolve_nodes(cls, info: Info, pks: Sequence[int]) -> list[Self | None]:
        rows = await info.context.loaders.users.user_by_id.load_many(pks)
        return [cls.from_optional(row) for row in rows]

    @strawberry.field(
        description="E-mail address, lower-cased. Null unless you are this user or staff.",
        extensions=visible_to(IsSelfOrStaff()),
        directives=[PRIVATE],
    )
    def email(self) -> str | None:
        return self.private_email

    @strawberry.field(
        description="Granted roles. Null unless you are this user or staff.",
        extensions=visible_to(IsSelfOrStaff()),
        directives=[PRIVATE],
    )
    def roles(self) -> list[Role] | None:  # type: ignore[valid-type]
        return [RoleValue(role) for role in self.private_roles]

    @strawberry.field(
        description="Orders this user placed, newest first. Null unless you are this user or staff.",
        extensions=visible_to(IsSelfOrStaff()),
        graphql_type=Connection[OrderRef] | None,
        directives=[PRIVATE],
        metadata=_CUSTOMER_ORDERS.metadata,
    )
    def orders(
        self, info: Info, first: First = None, after: After = None, last: Last = None, before: Before = None
    ) -> AwaitableOrValue[Connection["Order"]]:
        return _CUSTOMER_ORDERS.resolve(info.context.loaders, self, first=first, after=after, last=last, before=before)

    @strawberry.field(
        description="Reviews this user wrote, newest first.",
        graphql_type=Connection[ReviewRef],
        metadata=_USER_REVIEWS.metadata,
    )
    def reviews(
        self, info: Info, first: First = None, after: After = None, last: Last = None, before: Before = None
    ) -> AwaitableOrValue[Connection["Review"]]:
        return _USER_REVIEWS.resolve(info.context.loaders, self, first=first, after=after, last=last, before=before)


@strawberry.type(
    description="A key for services (`X-API-Key` header). Visible to its owner and admins; its secret is shown once.",
    directives=[PRIVATE],
)
class ApiKey(Node):
    NODE_TYPE = "ApiKey"

    pk: strawberry.Private[int]
    name: str = strawberry.field(description="What the key is for, chosen by its owner.")
    prefix: str = strawberry.field(description="The key's public first part, to recognise it in listings and logs.")
    roles: list[Role] = strawberry.field(  # type: ignore[valid-type]
        description="Roles the key grants; a key never grants a role its owner does not hold."
    )
    created_at: datetime = strawberry.field(description="When the key was created.")
    last_used_at: datetime | None = strawberry.field(
        description="When the key was last used (recorded at most once a minute); null if never."
    )
    expires_at: datetime | None = strawberry.field(description="When the key stops working; null if never.")
    revoked_at: datetime | None = strawberry.field(description="When the key was revoked; null while it is live.")

    @classmethod
    def from_model(cls, row: models.ApiKeyView) -> Self:
        return cls(
            id=cls.global_id(row.id),
            pk=row.id,
            name=row.name,
            prefix=row.prefix,
            roles=[RoleValue(role) for role in row.roles],
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )

    @classmethod
    async def resolve_nodes(cls, info: Info, pks: Sequence[int]) -> list[Self | None]:
        rows = await info.context.loaders.users.api_key_by_id.load_many(pks)
        return [cls.from_optional(row) for row in rows]
