"""Read views: the plain objects a repository builds from rows, immutable to the type checker."""

from dataclasses import dataclass, field
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def view(cls: type[T]) -> type[T]:
    """A slotted dataclass that mypy treats as frozen (assigning to a field is a type error).

    At run time it is not frozen: a frozen dataclass's `__init__` sets every field through
    `object.__setattr__`, five times the cost of a plain one (0.92 against 0.18 µs for a review),
    and a TopProducts page builds about 700 views. Views are never hashed (they are not keys).
    """
    return dataclass(slots=True)(cls)
