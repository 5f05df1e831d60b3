"""GraphQL face of domain errors: the shared `UserError` type and `UserErrorCode` enum."""

import strawberry

from domains.common.enums import described_enum
from domains.common.exceptions import ERROR_CODE_DESCRIPTIONS, DomainError, ErrorCode

UserErrorCode = described_enum(
    ErrorCode, name="UserErrorCode", description="Why a mutation refused its input.", values=ERROR_CODE_DESCRIPTIONS
)


@strawberry.type(description="An expected problem with a mutation's input, located by its field path.")
class UserError:
    field: list[str] | None = strawberry.field(
        description=(
            "Path to the input field at fault, e.g. ['input', 'items', '0', 'quantity']; "
            "null when the whole input is at fault."
        )
    )
    code: UserErrorCode = strawberry.field(description="Machine-readable reason.")  # type: ignore[valid-type]
    message: str = strawberry.field(description="Human-readable explanation, safe to show to end users.")


def user_errors_from(exc: DomainError) -> list[UserError]:
    """Translate a domain error into the payload's `userErrors` list."""
    return [UserError(field=list(p.field) if p.field else None, code=p.code, message=p.message) for p in exc.problems]
