"""The error vocabulary of the core: user errors for mutations, client errors for requests.

DomainError  -> a mutation's `userErrors` entry (expected failure: validation, conflict, state)
ClientError  -> a top-level GraphQL error with `extensions.code` (bad arguments, auth, limits)
Anything else is unexpected and is masked at the edge.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class ErrorCode(StrEnum):
    """Machine-readable reason of a user error."""

    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    PASSWORD_TOO_WEAK = "PASSWORD_TOO_WEAK"  # noqa: S105 - an error code, not a password
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    REFERENCED = "REFERENCED"
    FORBIDDEN = "FORBIDDEN"


ERROR_CODE_DESCRIPTIONS = {
    ErrorCode.INVALID: "A value is malformed or out of range.",
    ErrorCode.REQUIRED: "A required value is missing or empty.",
    ErrorCode.NOT_FOUND: "A referenced object does not exist or is not visible to you.",
    ErrorCode.ALREADY_EXISTS: "A unique value (e-mail, slug, SKU, review) is already taken.",
    ErrorCode.OUT_OF_STOCK: "Not enough units in stock for the quantity asked.",
    ErrorCode.INVALID_TRANSITION: "The object's current state does not allow this change.",
    ErrorCode.IDEMPOTENCY_KEY_REUSED: "The idempotency key was already used for a different request.",
    ErrorCode.PASSWORD_TOO_WEAK: "The password does not meet the password policy.",
    ErrorCode.INVALID_CREDENTIALS: "The e-mail and password do not match an active account.",
    ErrorCode.REFERENCED: "The object is still referenced and cannot be deleted.",
    ErrorCode.FORBIDDEN: "You may not make this change (for example, remove your own admin role).",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One user-facing problem with an input, located by its field path."""

    code: ErrorCode
    message: str
    field: tuple[str, ...] | None = None


class DomainError(Exception):
    """An expected failure of a use case, reported to the client as `userErrors`."""

    code: ClassVar[ErrorCode] = ErrorCode.INVALID

    def __init__(self, message: str, *, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = tuple(field) if field is not None else None

    @property
    def problems(self) -> list[Problem]:
        return [Problem(code=self.code, message=self.message, field=self.field)]


class InvalidInputError(DomainError):
    """Several validation problems at once, because a form wants every error together."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self._problems = list(problems)

    @property
    def problems(self) -> list[Problem]:
        return list(self._problems)


class NotFoundError(DomainError):
    code = ErrorCode.NOT_FOUND


class ClientError(Exception):
    """A request-level error whose message is safe to show; carries a GraphQL error code."""

    code: ClassVar[str] = "BAD_USER_INPUT"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadUserInputError(ClientError):
    code = "BAD_USER_INPUT"


class UnauthenticatedError(ClientError):
    code = "UNAUTHENTICATED"


class ForbiddenError(ClientError):
    code = "FORBIDDEN"
