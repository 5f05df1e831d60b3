import pytest

from api.auth.credentials import Credentials, read_connection_params
from domains.common.exceptions import UnauthenticatedError


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (None, Credentials()),
        ({}, Credentials()),
        ({"authorization": "Bearer abc"}, Credentials(bearer_token="abc")),
        ({"Authorization": "bearer abc"}, Credentials(bearer_token="abc")),
        ({"apiKey": " sfk_1.secret "}, Credentials(api_key="sfk_1.secret")),
    ],
    ids=["no payload", "empty payload", "bearer", "header-cased bearer", "api key"],
)
def test_connection_init_payload_credentials_are_read(payload: dict[str, object] | None, expected: Credentials) -> None:
    # when / then
    assert read_connection_params(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [
        {"authorization": 42},
        {"apiKey": ["a"]},
        {"authorization": "Token abc"},
        {"authorization": "Bearer abc", "apiKey": "sfk_1.secret"},
    ],
    ids=["number", "list", "other scheme", "two credentials"],
)
def test_malformed_connection_init_credentials_are_refused(payload: dict[str, object]) -> None:
    # when / then
    with pytest.raises(UnauthenticatedError):
        read_connection_params(payload)
