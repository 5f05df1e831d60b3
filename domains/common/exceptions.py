"""The error vocabulary of the core.

ClientError      -> a top-level GraphQL error with `extensions.code` and a message safe to show:
  BadUserInputError, UnauthenticatedError, ForbiddenError, RateLimitedError, ServiceUnavailableError.
DomainError      -> an expected failure of a use case, shown to the client as `userErrors`
  (each with an ErrorCode and a field path); InvalidInputError carries several at once.
Anything else is unexpected and is masked at the edge.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

SIGN_IN_REQUIRED = "Sign in to do this."
FORBIDDEN_MESSAGE = "You do not have the role this needs."


class ClientError(Exception):
    """A request-level error whose message is safe to show; carries a GraphQL error code."""

    code: ClassVar[str] = "BAD_USER_INPUT"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadUserInputError(ClientError):
    code = "BAD_USER_INPUT"


class UnauthenticatedError(ClientError):
    """The request carried a credential that cannot be trusted, or none where one is needed."""

    code = "UNAUTHENTICATED"


class ForbiddenError(ClientError):
    code = "FORBIDDEN"


class RateLimitedError(ClientError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailableError(ClientError):
    """Something the service depends on cannot answer now (HTTP 503); the same request may succeed later."""

    code = "SERVICE_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ErrorCode(StrEnum):
    """Why a mutation refused its input; exposed as the GraphQL enum `UserErrorCode`."""

    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_SHORT = "TOO_SHORT"
    TOO_LONG = "TOO_LONG"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PASSWORD_TOO_SIMILAR = "PASSWORD_TOO_SIMILAR"  # noqa: S105 - an error code, not a password
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105 - an error code, not a token
    ROLE_NOT_HELD = "ROLE_NOT_HELD"
    CANNOT_REMOVE_OWN_ADMIN = "CANNOT_REMOVE_OWN_ADMIN"
    REFERENCED = "REFERENCED"
    DUPLICATE = "DUPLICATE"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    INVALID_TRANSITION = "INVALID_TRANSITION"


ERROR_CODE_DESCRIPTIONS = {
    ErrorCode.INVALID: "The value has the wrong format or is out of range.",
    ErrorCode.REQUIRED: "A value is needed here.",
    ErrorCode.TOO_SHORT: "The value is shorter than allowed.",
    ErrorCode.TOO_LONG: "The value is longer than allowed.",
    ErrorCode.NOT_FOUND: "Nothing with this id exists, or you may not see it.",
    ErrorCode.ALREADY_EXISTS: "The value must be unique and is taken.",
    ErrorCode.PASSWORD_TOO_SIMILAR: "The password contains the e-mail address or the name.",
    ErrorCode.INVALID_CREDENTIALS: "The e-mail address or the password is wrong.",
    ErrorCode.INVALID_TOKEN: "The token is unknown, expired, revoked or already used.",
    ErrorCode.ROLE_NOT_HELD: "An API key can only hold roles its owner holds.",
    ErrorCode.CANNOT_REMOVE_OWN_ADMIN: "An admin cannot remove their own ADMIN role.",
    ErrorCode.REFERENCED: "Other objects still point at this one, so it cannot be deleted.",
    ErrorCode.DUPLICATE: "The same value appears twice where it may appear once (e.g. a product in one order).",
    ErrorCode.OUT_OF_STOCK: "Fewer units are in stock than asked for.",
    ErrorCode.IDEMPOTENCY_KEY_REUSED: "This idempotency key was already used for a different request.",
    ErrorCode.INVALID_TRANSITION: "The object's current state does not allow this change.",
}


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem with one input value; `field` is its path from the mutation's arguments."""

    code: ErrorCode
    message: str
    field: tuple[str, ...] | None = None


class DomainError(Exception):
    """An expected failure of a use case; becomes `userErrors`, never a GraphQL error."""

    def __init__(self, code: ErrorCode, message: str, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.problems: tuple[FieldProblem, ...] = (
            FieldProblem(code, message, tuple(field) if field is not None else None),
        )


class InvalidInputError(DomainError):
    """Every problem found in one input at once, because a form wants them all."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        Exception.__init__(self, "; ".join(problem.message for problem in problems))
        self.problems = tuple(problems)


class NotFoundError(DomainError):
    def __init__(self, message: str, field: Sequence[str]) -> None:
        super().__init__(ErrorCode.NOT_FOUND, message, field)
