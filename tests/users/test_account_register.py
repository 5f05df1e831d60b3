from typing import Any

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domains.users import models as users_models
from tests.graphql import gql

ACCOUNT_REGISTER = """
mutation ($input: AccountRegisterInput!) {
  accountRegister(input: $input) { user { name email roles } userErrors { field code message } }
}
"""


async def _register(client: AsyncClient, **fields: str) -> dict[str, Any]:
    account = {"email": "ann@example.com", "password": "correct horse battery", "name": "Ann"} | fields
    data = await gql(client, ACCOUNT_REGISTER, {"input": account})
    payload: dict[str, Any] = data["accountRegister"]
    return payload


def _codes(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(error["code"], error["field"]) for error in payload["userErrors"]]


async def test_account_register_creates_a_customer_with_a_lower_cased_email(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # when
    payload = await _register(client, email="  Ann.Lee@Example.COM ")

    # then: the caller just proved the account is theirs, so they see its private fields
    assert payload == {"user": {"name": "Ann", "email": "ann.lee@example.com", "roles": ["CUSTOMER"]}, "userErrors": []}
    stored = (await db_session.execute(select(users_models.User))).scalar_one()
    assert (stored.email, stored.roles, stored.is_active) == ("ann.lee@example.com", ["CUSTOMER"], True)
    assert stored.password_hash.startswith("$argon2")
    assert "correct horse battery" not in stored.password_hash


async def test_account_register_refuses_an_email_taken_in_another_case(client: AsyncClient) -> None:
    # given
    await _register(client, email="ann@example.com")

    # when
    payload = await _register(client, email="ANN@example.com")

    # then
    assert payload["user"] is None
    assert _codes(payload) == [("ALREADY_EXISTS", ["input", "email"])]


async def test_account_register_reports_every_problem_at_once(client: AsyncClient) -> None:
    # when
    payload = await _register(client, email="not-an-address", password="short", name="   ")

    # then
    assert payload["user"] is None
    assert _codes(payload) == [
        ("INVALID", ["input", "email"]),
        ("TOO_SHORT", ["input", "password"]),
        ("REQUIRED", ["input", "name"]),
    ]


async def test_account_register_refuses_passwords_containing_the_email_or_name(client: AsyncClient) -> None:
    # when
    by_email = await _register(client, email="marguerite@example.com", password="marguerite2026!")
    by_name = await _register(client, name="Bartholomew", password="iambartholomew")

    # then
    assert _codes(by_email) == [("PASSWORD_TOO_SIMILAR", ["input", "password"])]
    assert _codes(by_name) == [("PASSWORD_TOO_SIMILAR", ["input", "password"])]


async def test_account_register_refuses_values_over_their_length_limits(client: AsyncClient) -> None:
    # when
    payload = await _register(client, email=f"{'a' * 250}@example.com", password="p" * 129, name="n" * 121)

    # then
    assert _codes(payload) == [
        ("TOO_LONG", ["input", "email"]),
        ("TOO_LONG", ["input", "password"]),
        ("TOO_LONG", ["input", "name"]),
    ]
