"""Expected failures of account use cases, and the messages the client may see."""

from domains.common.exceptions import DomainError, ErrorCode

INVALID_CREDENTIALS = "The e-mail address or the password is wrong."
INVALID_SESSION = "The refresh token is invalid, expired or revoked; sign in again."
INVALID_ACCESS_TOKEN = "The access token is invalid or expired; sign in again or refresh it."  # noqa: S105 - a message, not a token
INVALID_API_KEY = "The API key is invalid, expired or revoked."
# A key minting keys would outlive its own expiry and revocation: only a signed-in user may.
API_KEY_REFUSED = "API keys cannot do this; sign in as a user."


class EmailTakenError(DomainError):
    def __init__(self) -> None:
        super().__init__(ErrorCode.ALREADY_EXISTS, "An account with this e-mail address exists.", ("input", "email"))


class InvalidCredentialsError(DomainError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_CREDENTIALS, message, None)


class InvalidRefreshTokenError(DomainError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_TOKEN, message, ("input", "refreshToken"))


class CannotRemoveOwnAdminError(DomainError):
    def __init__(self) -> None:
        super().__init__(
            ErrorCode.CANNOT_REMOVE_OWN_ADMIN, "You cannot remove your own ADMIN role.", ("input", "roles")
        )
