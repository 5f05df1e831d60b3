"""The GraphQL face of domain errors: one shared `UserError` type and the `UserErrorCode` enum."""

import strawberry

from domains.common.exceptions import ERROR_CODE_DESCRIPTIONS, DomainError, ErrorCode
from schema.enums import described_enum

# The description of every payload's `userErrors` field.
USER_ERRORS = "Why the input was refused; empty on success."

UserErrorCode = described_enum(
    ErrorCode,
    name="UserErrorCode",
    description="Why a mutation refused its input. Each mutation's description lists the codes it can return.",
    values=ERROR_CODE_DESCRIPTIONS,
)


@strawberry.type(description="A problem with a mutation's input that the user can fix.")
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path to the input value at fault, e.g. `["input", "email"]`; null when it is the whole input.'
    )
    code: UserErrorCode = strawberry.field(description="Machine-readable reason.")  # type: ignore[valid-type]
    message: str = strawberry.field(description="Human-readable reason, safe to show to the user.")


def user_errors_from(error: DomainError) -> list[UserError]:
    """Turn a domain error into the `userErrors` of a payload."""
    return [
        UserError(
            field=list(problem.field) if problem.field is not None else None, code=problem.code, message=problem.message
        )
        for problem in error.problems
    ]
