"""The users service called directly, without HTTP: sign-in as three steps (read, check the password holding
no connection, write) and what may change in between; who may set roles and create or revoke API keys."""

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import build_token_issuer
from api.settings import Settings
from domains.common.base import utcnow
from domains.common.exceptions import (
    ClientError,
    ErrorCode,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthenticatedError,
)
from domains.common.keyset import page_request
from domains.common.principal import ANONYMOUS, Principal, Role
from domains.users import models as users_models
from domains.users import repository as users_repository
from domains.users import service as users_service
from domains.users.exceptions import InvalidCredentialsError
from tests import factories

PASSWORD = "a long enough password"


def _outdated_hash() -> str:
    return PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8 * 1024, parallelism=1),)).hash(PASSWORD)


async def _checked(session: AsyncSession, email: str) -> users_service.VerifiedSignIn:
    credentials = users_service.SignIn(email=email, password=PASSWORD)
    account = await users_service.find_sign_in_account(session, input=credentials)
    await session.commit()
    return await users_service.check_sign_in_password(account=account, input=credentials)


async def test_sign_in_refuses_an_account_deactivated_while_its_password_was_checked(
    db_session: AsyncSession, settings: Settings
) -> None:
    # given: a sign-in whose password matched
    user = await factories.create_user(db_session, password=PASSWORD)
    await db_session.commit()
    sign_in = await _checked(db_session, user.email)

    # when: the account is deactivated before the tokens are written
    user.is_active = False
    await db_session.commit()
    with pytest.raises(InvalidCredentialsError) as refused:
        await users_service.create_tokens(
            db_session, issuer=build_token_issuer(settings), sign_in=sign_in, now=utcnow()
        )

    # then
    assert [problem.code for problem in refused.value.problems] == [ErrorCode.INVALID_CREDENTIALS]


async def test_sign_in_rehash_keeps_a_hash_written_while_the_password_was_checked(
    db_session: AsyncSession, settings: Settings
) -> None:
    # given: an outdated hash, so the check made a fresh one
    user = await factories.create_user(db_session)
    user.password_hash = _outdated_hash()
    await db_session.commit()
    sign_in = await _checked(db_session, user.email)
    assert sign_in.new_hash is not None

    # when: another hash is stored meanwhile (a concurrent sign-in's rehash), then this sign-in finishes
    user.password_hash = "$argon2id$written-meanwhile"
    await db_session.commit()
    issued = await users_service.create_tokens(
        db_session, issuer=build_token_issuer(settings), sign_in=sign_in, now=utcnow()
    )
    await db_session.commit()

    # then: signed in, and the hash written meanwhile stays
    stored = await db_session.scalar(select(users_models.User.password_hash).where(users_models.User.id == user.id))
    assert issued.user.id == user.id
    assert stored == "$argon2id$written-meanwhile"


async def test_sign_in_replaces_an_outdated_hash_it_verified(db_session: AsyncSession, settings: Settings) -> None:
    # given
    user = await factories.create_user(db_session)
    user.password_hash = _outdated_hash()
    await db_session.commit()
    sign_in = await _checked(db_session, user.email)

    # when
    await users_service.create_tokens(db_session, issuer=build_token_issuer(settings), sign_in=sign_in, now=utcnow())
    await db_session.commit()

    # then
    stored = await db_session.scalar(select(users_models.User.password_hash).where(users_models.User.id == user.id))
    assert stored == sign_in.new_hash


def _principal(user: users_models.User, *, api_key_prefix: str | None = None) -> Principal:
    return Principal(user_id=user.id, roles=users_service.user_roles(user), api_key_prefix=api_key_prefix)


async def _roles(session: AsyncSession, user_id: int) -> list[str]:
    stored = await session.scalar(select(users_models.User.roles).where(users_models.User.id == user_id))
    return list(stored or [])


async def _api_key_count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(users_models.ApiKey))).scalar_one())


@pytest.mark.parametrize(
    ("caller_roles", "refusal"),
    [(None, UnauthenticatedError), (("CUSTOMER",), ForbiddenError), (("STAFF",), ForbiddenError)],
)
async def test_set_user_roles_refuses_anyone_but_an_admin_and_changes_nothing(
    db_session: AsyncSession, caller_roles: tuple[str, ...] | None, refusal: type[ClientError]
) -> None:
    # given: a customer who would like to make themselves admin
    target = await factories.create_user(db_session)
    caller = _principal(await factories.create_user(db_session, roles=caller_roles)) if caller_roles else ANONYMOUS
    await db_session.commit()
    promotion = users_service.UserRolesSet(user_id=target.id, roles=(Role.ADMIN,))

    # when
    with pytest.raises(refusal):
        await users_service.set_user_roles(db_session, caller, input=promotion)
    await db_session.commit()  # whatever the service changed before refusing would be kept now

    # then
    assert await _roles(db_session, target.id) == ["CUSTOMER"]


async def test_set_user_roles_lets_an_admin_replace_a_users_roles(db_session: AsyncSession) -> None:
    # given
    admin = await factories.create_user(db_session, roles=("ADMIN",))
    target = await factories.create_user(db_session)
    await db_session.commit()

    # when
    user = await users_service.set_user_roles(
        db_session, _principal(admin), input=users_service.UserRolesSet(user_id=target.id, roles=(Role.STAFF,))
    )
    await db_session.commit()

    # then
    assert user.roles == ["STAFF"]
    assert await _roles(db_session, target.id) == ["STAFF"]


async def test_create_api_key_refuses_an_api_key_and_an_anonymous_caller(db_session: AsyncSession) -> None:
    # given: an admin signed in with one of their keys, and nobody at all
    admin = await factories.create_user(db_session, roles=("ADMIN",))
    await db_session.commit()
    new_key = users_service.ApiKeyCreate(name="forever")

    # when
    with pytest.raises(ForbiddenError) as as_key:
        await users_service.create_api_key(db_session, _principal(admin, api_key_prefix="sfk_0123"), input=new_key)
    with pytest.raises(UnauthenticatedError):
        await users_service.create_api_key(db_session, ANONYMOUS, input=new_key)
    await db_session.commit()

    # then
    assert as_key.value.code == "FORBIDDEN"
    assert await _api_key_count(db_session) == 0


async def test_create_api_key_refuses_roles_the_owner_lacks_however_the_input_was_built(
    db_session: AsyncSession,
) -> None:
    # given: a customer's key asking for STAFF, built directly, past `from_data`
    customer = await factories.create_user(db_session)
    await db_session.commit()
    new_key = users_service.ApiKeyCreate(name="ci", roles=(Role.CUSTOMER, Role.STAFF))

    # when
    with pytest.raises(InvalidInputError) as refused:
        await users_service.create_api_key(db_session, _principal(customer), input=new_key)
    await db_session.commit()

    # then
    assert [(p.code, p.field) for p in refused.value.problems] == [(ErrorCode.ROLE_NOT_HELD, ("input", "roles", "1"))]
    assert await _api_key_count(db_session) == 0


async def test_revoke_api_key_lets_the_owner_and_an_admin_revoke_but_not_another_user(
    db_session: AsyncSession,
) -> None:
    # given: a customer's key
    owner = await factories.create_user(db_session)
    other = await factories.create_user(db_session)
    admin = await factories.create_user(db_session, roles=("ADMIN",))
    key, _ = await users_service.create_api_key(
        db_session, _principal(owner), input=users_service.ApiKeyCreate(name="ci")
    )
    await db_session.commit()
    revoke = users_service.ApiKeyRevoke(api_key_id=key.id)

    # when
    with pytest.raises(NotFoundError) as by_other:
        await users_service.revoke_api_key(db_session, _principal(other), input=revoke, now=utcnow())
    with pytest.raises(UnauthenticatedError):
        await users_service.revoke_api_key(db_session, ANONYMOUS, input=revoke, now=utcnow())
    await db_session.commit()
    still_live = await db_session.scalar(select(users_models.ApiKey.revoked_at).where(users_models.ApiKey.id == key.id))
    by_admin = await users_service.revoke_api_key(db_session, _principal(admin), input=revoke, now=utcnow())

    # then
    assert [(p.code, p.field) for p in by_other.value.problems] == [(ErrorCode.NOT_FOUND, ("input", "apiKeyId"))]
    assert still_live is None
    assert by_admin.revoked_at is not None


def test_account_register_input_reports_every_problem_in_field_order() -> None:
    # given: a bad address, a password containing the name, a blank name; then only the similar password
    bad = {"email": "not-an-address", "password": "short", "name": "   "}
    similar = {"email": "ann@example.com", "password": "I am Bartholomew!", "name": " Bartholomew "}

    # when
    with pytest.raises(InvalidInputError) as all_bad:
        users_service.AccountRegister.from_data(bad)
    with pytest.raises(InvalidInputError) as too_similar:
        users_service.AccountRegister.from_data(similar)

    # then
    assert [(p.code, p.field) for p in all_bad.value.problems] == [
        (ErrorCode.INVALID, ("input", "email")),
        (ErrorCode.TOO_SHORT, ("input", "password")),
        (ErrorCode.REQUIRED, ("input", "name")),
    ]
    assert [(p.code, p.field) for p in too_similar.value.problems] == [
        (ErrorCode.PASSWORD_TOO_SIMILAR, ("input", "password"))
    ]


@pytest.mark.parametrize(
    ("caller_roles", "refusal"),
    [(None, UnauthenticatedError), (("CUSTOMER",), ForbiddenError), (("STAFF",), ForbiddenError)],
)
async def test_list_users_refuses_anyone_but_an_admin(
    db_session: AsyncSession, caller_roles: tuple[str, ...] | None, refusal: type[ClientError]
) -> None:
    # given
    caller = _principal(await factories.create_user(db_session, roles=caller_roles)) if caller_roles else ANONYMOUS
    await db_session.commit()
    page = page_request(users_repository.USER_ORDERING, first=10, after=None, last=None, before=None)

    # when / then
    with pytest.raises(refusal):
        await users_service.list_users(db_session, caller, page=page)
    with pytest.raises(refusal):
        await users_service.count_users(db_session, caller)


async def test_list_users_shows_an_admin_every_account(db_session: AsyncSession) -> None:
    # given
    admin = await factories.create_user(db_session, roles=("ADMIN",))
    customer = await factories.create_user(db_session)
    await db_session.commit()
    page = page_request(users_repository.USER_ORDERING, first=10, after=None, last=None, before=None)

    # when
    listed = await users_service.list_users(db_session, _principal(admin), page=page)
    counted = await users_service.count_users(db_session, _principal(admin))

    # then
    assert {row.id for row in listed.rows} == {admin.id, customer.id}
    assert counted == 2
