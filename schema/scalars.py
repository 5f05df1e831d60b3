"""Shared GraphQL value types."""

from decimal import Decimal

import strawberry

from schema.cache_control import INHERIT_MAX_AGE


@strawberry.type(
    description="An amount of money in one currency; the amount is an exact decimal string.",
    directives=[INHERIT_MAX_AGE],
)
class Money:
    amount: Decimal = strawberry.field(description='Exact amount, e.g. "19.90"; never a float.')
    currency: str = strawberry.field(description="ISO 4217 currency code, e.g. USD.")
