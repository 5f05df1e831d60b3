"""Sign-in as three steps (read, check the password holding no connection, write): what may change in between."""

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import build_token_issuer
from api.settings import Settings
from domains.common.base import utcnow
from domains.common.exceptions import ErrorCode
from domains.users import models as users_models
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
