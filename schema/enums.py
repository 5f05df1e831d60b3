"""Expose a core `StrEnum` as a GraphQL enum, with a description on every value."""

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

import strawberry

E = TypeVar("E", bound=type[StrEnum])


def described_enum(cls: E, *, name: str, description: str, values: Mapping[Any, str]) -> E:
    """Register a plain enum with Strawberry; the core keeps its descriptions free of GraphQL."""
    wrapped = strawberry.enum(cls, name=name, description=description)
    for value in wrapped.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = values[value.name]
    return wrapped
