"""The error vocabulary of the core.

ClientError -> a top-level GraphQL error with `extensions.code` and a message safe to show
(bad arguments now; authentication, authorization and limits join it with their issues).
Anything else is unexpected and is masked at the edge.
"""

from typing import ClassVar


class ClientError(Exception):
    """A request-level error whose message is safe to show; carries a GraphQL error code."""

    code: ClassVar[str] = "BAD_USER_INPUT"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadUserInputError(ClientError):
    code = "BAD_USER_INPUT"
