"""The users service called directly, without HTTP: sign-in as three steps (read, check the password holding
no connection, write) and what may change in between; who may set roles and create or revoke API keys."""

from datetime import UTC, datetime, timedelta

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
    DomainError,
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
from domains.users.exceptions import (
    API_KEY_REFUSED,
    INVALID_ACCESS_TOKEN,
    INVALID_API_KEY,
    INVALID_CREDENTIALS,
    INVALID_SESSION,
    InvalidCredentialsError,
    InvalidRefreshTokenError,
)
from domains.users.tokens import token_digest
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
    assert [(p.code, p.message) for p in refused.value.problems] == [
        (ErrorCode.INVALID_CREDENTIALS, INVALID_CREDENTIALS)
    ]


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
    assert str(as_key.value) == API_KEY_REFUSED
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


# API keys: what a key grants, how it authenticates, and when its use is recorded.

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOUCH = timedelta(minutes=5)


async def _key_row(session: AsyncSession, key_id: int) -> users_models.ApiKey:
    stmt = select(users_models.ApiKey).where(users_models.ApiKey.id == key_id)
    return (await session.execute(stmt.execution_options(populate_existing=True))).scalar_one()


async def test_create_api_key_grants_the_roles_asked_once_each_in_order_and_returns_the_only_copy_of_the_secret(
    db_session: AsyncSession,
) -> None:
    # given
    admin = _principal(await factories.create_user(db_session, roles=("ADMIN",)))
    await db_session.commit()
    new_key = users_service.ApiKeyCreate(name="ci", roles=(Role.STAFF, Role.CUSTOMER, Role.STAFF), expires_at=None)

    # when
    key, full = await users_service.create_api_key(db_session, admin, input=new_key)
    await db_session.commit()

    # then
    stored = await _key_row(db_session, key.id)
    prefix, _, secret = full.partition(".")
    assert (stored.user_id, stored.name, stored.roles, stored.expires_at) == (
        admin.user_id,
        "ci",
        ["STAFF", "CUSTOMER"],
        None,
    )
    assert stored.prefix == prefix
    assert prefix.startswith(users_service.API_KEY_PREFIX_MARK)
    assert len(prefix) == len(users_service.API_KEY_PREFIX_MARK) + 12
    assert len(secret) == 43  # 32 random bytes, URL-safe base64
    assert stored.secret_hash == token_digest(secret) != secret


async def test_create_api_key_without_roles_grants_all_of_the_owners_and_keeps_the_expiry(
    db_session: AsyncSession,
) -> None:
    # given
    owner = await factories.create_user(db_session, roles=("STAFF", "CUSTOMER"))
    await db_session.commit()
    expires_at = utcnow() + timedelta(days=1)

    # when
    key, _ = await users_service.create_api_key(
        db_session, _principal(owner), input=users_service.ApiKeyCreate(name="all", expires_at=expires_at)
    )
    await db_session.commit()

    # then
    stored = await _key_row(db_session, key.id)
    assert stored.roles == ["CUSTOMER", "STAFF"]
    assert stored.expires_at == expires_at


def test_api_key_input_names_each_role_the_owner_lacks_after_the_other_problems() -> None:
    # given: a customer asking for roles they lack, once with a blank name too
    owner = Principal(user_id=1, roles=frozenset({Role.CUSTOMER}))
    roles = ["CUSTOMER", "STAFF", "ADMIN"]

    # when
    with pytest.raises(InvalidInputError) as only_roles:
        users_service.ApiKeyCreate.from_data({"name": "ci", "roles": roles}, owner=owner)
    with pytest.raises(InvalidInputError) as with_name:
        users_service.ApiKeyCreate.from_data({"name": " ", "roles": roles}, owner=owner)
    as_text = users_service.ApiKeyCreate.from_data({"name": "ci", "roles": ("CUSTOMER",)}, owner=owner)

    # then
    not_held = [
        (ErrorCode.ROLE_NOT_HELD, "You do not hold the STAFF role.", ("input", "roles", "1")),
        (ErrorCode.ROLE_NOT_HELD, "You do not hold the ADMIN role.", ("input", "roles", "2")),
    ]
    assert [(p.code, p.message, p.field) for p in only_roles.value.problems] == not_held
    assert [(p.code, p.field) for p in with_name.value.problems] == [
        (ErrorCode.REQUIRED, ("input", "name")),
        *[(code, field) for code, _, field in not_held],
    ]
    assert as_text.roles == (Role.CUSTOMER,)


def test_api_key_input_judges_a_roles_string_as_no_roles_given() -> None:
    # given: one string where a list belongs, naming a role the owner lacks
    owner = Principal(user_id=1, roles=frozenset({Role.CUSTOMER}))

    # when
    with pytest.raises(InvalidInputError) as refused:
        users_service.ApiKeyCreate.from_data({"name": "ci", "roles": "ADMIN"}, owner=owner)

    # then: refused for its shape alone, not as a role not held
    assert [(p.code, p.field) for p in refused.value.problems] == [(ErrorCode.INVALID, ("input", "roles"))]


def test_api_key_input_lets_an_admin_grant_the_roles_an_admin_implies() -> None:
    # when
    api_key = users_service.ApiKeyCreate.from_data(
        {"name": "ops", "roles": ["CUSTOMER", "STAFF"]}, owner=Principal(user_id=1, roles=frozenset({Role.ADMIN}))
    )

    # then
    assert api_key.roles == (Role.CUSTOMER, Role.STAFF)


async def test_revoke_api_key_twice_keeps_the_first_time_and_says_what_was_not_found(db_session: AsyncSession) -> None:
    # given
    owner = await factories.create_user(db_session)
    key, _ = await users_service.create_api_key(
        db_session, _principal(owner), input=users_service.ApiKeyCreate(name="ci")
    )
    await db_session.commit()
    revoke = users_service.ApiKeyRevoke(api_key_id=key.id)

    # when
    first = await users_service.revoke_api_key(db_session, _principal(owner), input=revoke, now=T0)
    await db_session.commit()
    again = await users_service.revoke_api_key(db_session, _principal(owner), input=revoke, now=T0 + TOUCH)
    await db_session.commit()
    with pytest.raises(NotFoundError) as missing:
        await users_service.revoke_api_key(
            db_session, _principal(owner), input=users_service.ApiKeyRevoke(api_key_id=key.id + 1), now=T0
        )

    # then
    assert first.id == again.id == key.id
    assert (await _key_row(db_session, key.id)).revoked_at == T0
    assert [(p.code, p.message, p.field) for p in missing.value.problems] == [
        (ErrorCode.NOT_FOUND, "No such API key.", ("input", "apiKeyId"))
    ]


async def _authenticated(session: AsyncSession, full: str, now: datetime) -> users_service.ApiKeyAuthentication:
    return await users_service.authenticate_api_key(session, key=full, now=now, touch_interval=TOUCH)


async def _refused_key(session: AsyncSession, full: str, now: datetime) -> str:
    with pytest.raises(UnauthenticatedError) as refused:
        await _authenticated(session, full, now)
    return str(refused.value)


async def test_authenticate_api_key_grants_the_keys_roles_that_its_owner_still_holds(db_session: AsyncSession) -> None:
    # given: an admin's key for STAFF; the admin is then demoted to CUSTOMER
    owner = await factories.create_user(db_session, roles=("ADMIN",))
    key, full = await users_service.create_api_key(
        db_session, _principal(owner), input=users_service.ApiKeyCreate(name="ops", roles=(Role.STAFF,))
    )
    await db_session.commit()
    as_staff = await _authenticated(db_session, full, T0)
    owner.roles = ["CUSTOMER"]
    await db_session.commit()

    # when
    demoted = await _authenticated(db_session, full, T0)

    # then
    prefix = full.partition(".")[0]
    assert as_staff.principal == Principal(
        user_id=owner.id, roles=frozenset({Role.STAFF, Role.CUSTOMER}), api_key_prefix=prefix
    )
    assert (as_staff.api_key_id, as_staff.stale) == (key.id, True)
    assert demoted.principal.roles == frozenset({Role.CUSTOMER})


async def test_authenticate_api_key_refuses_a_wrong_secret_an_unknown_or_foreign_prefix_and_no_separator(
    db_session: AsyncSession,
) -> None:
    # given
    owner = await factories.create_user(db_session)
    _, full = await users_service.create_api_key(
        db_session, _principal(owner), input=users_service.ApiKeyCreate(name="ci")
    )
    await db_session.commit()
    prefix, _, secret = full.partition(".")

    # when
    refusals = [
        await _refused_key(db_session, f"{prefix}.{secret}x", T0),
        await _refused_key(db_session, f"{prefix}x.{secret}", T0),
        await _refused_key(db_session, f"{prefix.removeprefix('sfk_')}.{secret}", T0),
        await _refused_key(db_session, prefix + secret, T0),
    ]

    # then
    assert refusals == [INVALID_API_KEY] * 4
    assert (await _authenticated(db_session, full, T0)).principal.user_id == owner.id


async def test_authenticate_api_key_refuses_a_key_that_is_not_stored_under_its_prefix(
    db_session: AsyncSession,
) -> None:
    # given: a prefix without the mark whose row exists (a lookup would find it)
    owner = await factories.create_user(db_session)
    key, full = await users_service.create_api_key(
        db_session, _principal(owner), input=users_service.ApiKeyCreate(name="ci")
    )
    bare = full.removeprefix(users_service.API_KEY_PREFIX_MARK)
    key.prefix = bare.partition(".")[0]
    await db_session.commit()

    # when / then
    assert await _refused_key(db_session, bare, T0) == INVALID_API_KEY


async def test_authenticate_api_key_refuses_a_revoked_expired_or_deactivated_owners_key(
    db_session: AsyncSession,
) -> None:
    # given: a key expiring at T0 + 1 minute
    owner = await factories.create_user(db_session)
    key, full = await users_service.create_api_key(
        db_session,
        _principal(owner),
        input=users_service.ApiKeyCreate.model_construct(name="ci", roles=None, expires_at=T0 + timedelta(minutes=1)),
    )
    await db_session.commit()

    # when
    just_before = await _authenticated(db_session, full, T0 + timedelta(minutes=1) - timedelta(microseconds=1))
    at_expiry = await _refused_key(db_session, full, T0 + timedelta(minutes=1))
    owner.is_active = False
    await db_session.commit()
    deactivated = await _refused_key(db_session, full, T0)
    owner.is_active = True
    key.revoked_at = T0
    await db_session.commit()
    revoked = await _refused_key(db_session, full, T0 - timedelta(days=1))

    # then
    assert just_before.principal.user_id == owner.id
    assert [at_expiry, deactivated, revoked] == [INVALID_API_KEY] * 3


async def test_a_key_is_stale_from_one_touch_interval_after_its_last_recorded_use(db_session: AsyncSession) -> None:
    # given: a key first used at T0
    owner = await factories.create_user(db_session)
    key, full = await users_service.create_api_key(
        db_session, _principal(owner), input=users_service.ApiKeyCreate(name="ci")
    )
    await db_session.commit()
    await users_service.record_api_key_use(db_session, api_key_id=key.id, now=T0, touch_interval=TOUCH)
    await db_session.commit()

    # when
    within = await _authenticated(db_session, full, T0 + TOUCH - timedelta(microseconds=1))
    at_interval = await _authenticated(db_session, full, T0 + TOUCH)

    # then
    assert (within.stale, at_interval.stale) == (False, True)


async def test_record_api_key_use_records_at_most_one_use_per_interval(db_session: AsyncSession) -> None:
    # given
    owner = await factories.create_user(db_session)
    key, _ = await users_service.create_api_key(
        db_session, _principal(owner), input=users_service.ApiKeyCreate(name="ci")
    )
    await db_session.commit()

    async def used(now: datetime) -> datetime | None:
        await users_service.record_api_key_use(db_session, api_key_id=key.id, now=now, touch_interval=TOUCH)
        await db_session.commit()
        return (await _key_row(db_session, key.id)).last_used_at

    # when
    first = await used(T0)
    soon_after = await used(T0 + TOUCH - timedelta(seconds=1))
    later = await used(T0 + TOUCH + timedelta(seconds=1))

    # then
    assert (first, soon_after, later) == (T0, T0, T0 + TOUCH + timedelta(seconds=1))


# Sessions: the refresh-token rows a sign-in, a rotation and a sign-out write, and an access token's principal.


async def _tokens(session: AsyncSession, user_id: int) -> list[users_models.RefreshToken]:
    stmt = select(users_models.RefreshToken).where(users_models.RefreshToken.user_id == user_id)
    stmt = stmt.order_by(users_models.RefreshToken.id).execution_options(populate_existing=True)
    return list((await session.execute(stmt)).scalars())


async def _signed_in(
    session: AsyncSession, settings: Settings, user: users_models.User, now: datetime
) -> users_service.IssuedTokens:
    sign_in = users_service.VerifiedSignIn(user_id=user.id, verified_hash=user.password_hash, new_hash=None)
    issued = await users_service.create_tokens(session, issuer=build_token_issuer(settings), sign_in=sign_in, now=now)
    await session.commit()
    return issued


async def test_sign_in_starts_a_new_family_with_one_stored_refresh_token_per_pair(
    db_session: AsyncSession, settings: Settings
) -> None:
    # given
    user = await factories.create_user(db_session, roles=("STAFF",))
    await db_session.commit()
    issuer, now = build_token_issuer(settings), utcnow()

    # when: two sign-ins
    first = await _signed_in(db_session, settings, user, now)
    second = await _signed_in(db_session, settings, user, now)

    # then
    stored = await _tokens(db_session, user.id)
    assert [row.token_hash for row in stored] == [token_digest(first.refresh_token), token_digest(second.refresh_token)]
    assert stored[0].family_id != stored[1].family_id
    assert [(row.created_at, row.expires_at, row.used_at, row.revoked_at) for row in stored] == [
        (now, now + issuer.refresh_ttl, None, None)
    ] * 2
    assert first.access_token_expires_at == now + issuer.access_ttl
    assert issuer.verify_refresh(first.refresh_token).user_id == user.id
    claims = issuer.verify_access(first.access_token)
    assert (claims.user_id, claims.roles) == (user.id, frozenset({Role.STAFF}))


async def test_refresh_rotates_within_the_family_and_a_second_use_revokes_the_family(
    db_session: AsyncSession, settings: Settings
) -> None:
    # given
    user = await factories.create_user(db_session)
    await db_session.commit()
    issuer, now = build_token_issuer(settings), utcnow()
    first = await _signed_in(db_session, settings, user, now)
    refresh = users_service.TokenRefresh(refresh_token=first.refresh_token)

    # when
    rotated = await users_service.refresh_tokens(db_session, issuer=issuer, input=refresh, now=now + TOUCH)
    await db_session.commit()
    reused = await users_service.refresh_tokens(db_session, issuer=issuer, input=refresh, now=now + 2 * TOUCH)
    await db_session.commit()

    # then
    assert isinstance(rotated, users_service.IssuedTokens)
    assert isinstance(reused, InvalidRefreshTokenError)
    assert [(p.code, p.message, p.field) for p in reused.problems] == [
        (ErrorCode.INVALID_TOKEN, INVALID_SESSION, ("input", "refreshToken"))
    ]
    old, new = await _tokens(db_session, user.id)
    assert new.token_hash == token_digest(rotated.refresh_token)
    assert new.family_id == old.family_id
    assert (old.used_at, old.revoked_at) == (now + TOUCH, now + 2 * TOUCH)
    assert (new.created_at, new.used_at, new.revoked_at) == (now + TOUCH, None, now + 2 * TOUCH)


async def _refused_refresh(session: AsyncSession, settings: Settings, token: str) -> tuple[str, str, tuple[str, ...]]:
    with pytest.raises(InvalidRefreshTokenError) as refused:
        await users_service.refresh_tokens(
            session,
            issuer=build_token_issuer(settings),
            input=users_service.TokenRefresh(refresh_token=token),
            now=utcnow(),
        )
    [problem] = refused.value.problems
    return problem.code, problem.message, problem.field or ()


async def test_refresh_refuses_a_revoked_token_an_inactive_user_and_a_token_stored_for_someone_else(
    db_session: AsyncSession, settings: Settings
) -> None:
    # given: three sessions
    user = await factories.create_user(db_session)
    other = await factories.create_user(db_session)
    await db_session.commit()
    revoked = await _signed_in(db_session, settings, user, utcnow())
    deactivated = await _signed_in(db_session, settings, other, utcnow())
    foreign = await _signed_in(db_session, settings, user, utcnow())
    await users_service.revoke_tokens(
        db_session,
        issuer=build_token_issuer(settings),
        input=users_service.TokenRevoke(refresh_token=revoked.refresh_token),
        now=utcnow(),
    )
    other_id = other.id
    other.is_active = False
    stored = (await _tokens(db_session, user.id))[-1]
    stored.user_id = other_id  # a stored hash whose row names another user than the token's claims
    await db_session.commit()

    # when
    refusals = [
        await _refused_refresh(db_session, settings, revoked.refresh_token),
        await _refused_refresh(db_session, settings, deactivated.refresh_token),
        await _refused_refresh(db_session, settings, foreign.refresh_token),
        await _refused_refresh(db_session, settings, "not a token"),
        await _refused_refresh(db_session, settings, revoked.access_token),
    ]
    await db_session.commit()

    # then: all the same refusal, and only the explicitly revoked family is revoked
    assert refusals == [(ErrorCode.INVALID_TOKEN, INVALID_SESSION, ("input", "refreshToken"))] * 5
    assert [row.revoked_at is not None for row in await _tokens(db_session, user.id)] == [True]
    assert [row.revoked_at is not None for row in await _tokens(db_session, other_id)] == [False, False]


async def test_revoke_tokens_revokes_the_whole_family_and_only_it(db_session: AsyncSession, settings: Settings) -> None:
    # given: a session rotated once, and another session of the same user
    user = await factories.create_user(db_session)
    await db_session.commit()
    issuer, now = build_token_issuer(settings), utcnow()
    first = await _signed_in(db_session, settings, user, now)
    rotated = await users_service.refresh_tokens(
        db_session, issuer=issuer, input=users_service.TokenRefresh(refresh_token=first.refresh_token), now=now
    )
    assert isinstance(rotated, users_service.IssuedTokens)
    await _signed_in(db_session, settings, user, now)

    # when: signing out with the older token of the first session
    await users_service.revoke_tokens(
        db_session, issuer=issuer, input=users_service.TokenRevoke(refresh_token=first.refresh_token), now=now + TOUCH
    )
    await db_session.commit()

    # then
    assert [row.revoked_at for row in await _tokens(db_session, user.id)] == [now + TOUCH, now + TOUCH, None]
    with pytest.raises(InvalidRefreshTokenError):
        await users_service.revoke_tokens(
            db_session, issuer=issuer, input=users_service.TokenRevoke(refresh_token="garbage"), now=now
        )


async def test_authenticate_bearer_gives_the_users_current_roles_until_the_token_expires(
    db_session: AsyncSession, settings: Settings
) -> None:
    # given: a token issued while the user was a customer, who is now staff
    user = await factories.create_user(db_session)
    await db_session.commit()
    issuer = build_token_issuer(settings)
    token, expires_at = issuer.issue_access(user.id, frozenset({Role.CUSTOMER}), now=utcnow())
    user.roles = ["STAFF"]
    await db_session.commit()

    # when
    principal = await users_service.authenticate_bearer(db_session, issuer=issuer, token=token)

    # then
    assert principal == Principal(
        user_id=user.id, roles=frozenset({Role.STAFF}), expires_at=expires_at.replace(microsecond=0)
    )


async def test_authenticate_bearer_refuses_a_bad_token_and_a_deactivated_or_deleted_user(
    db_session: AsyncSession, settings: Settings
) -> None:
    # given
    user = await factories.create_user(db_session)
    await db_session.commit()
    issuer = build_token_issuer(settings)
    token, _ = issuer.issue_access(user.id, frozenset({Role.CUSTOMER}), now=utcnow())
    refresh, _ = issuer.issue_refresh(user.id, frozenset({Role.CUSTOMER}), now=utcnow())
    missing, _ = issuer.issue_access(user.id + 1000, frozenset({Role.CUSTOMER}), now=utcnow())
    user.is_active = False
    await db_session.commit()

    # when
    refusals = []
    for presented in (token, refresh, missing):
        with pytest.raises(UnauthenticatedError) as refused:
            await users_service.authenticate_bearer(db_session, issuer=issuer, token=presented)
        refusals.append(str(refused.value))

    # then
    assert refusals == [INVALID_ACCESS_TOKEN] * 3


async def test_sign_in_reads_the_account_by_its_address_in_any_case_and_refuses_every_mismatch(
    db_session: AsyncSession,
) -> None:
    # given
    user = await factories.create_user(db_session, password=PASSWORD)
    inactive = await factories.create_user(db_session, password=PASSWORD)
    inactive.is_active = False
    await db_session.commit()

    async def checked(email: str, password: str = PASSWORD) -> users_service.VerifiedSignIn | str:
        credentials = users_service.SignIn(email=email, password=password)
        account = await users_service.find_sign_in_account(db_session, input=credentials)
        try:
            return await users_service.check_sign_in_password(account=account, input=credentials)
        except InvalidCredentialsError as exc:
            return str([(p.code, p.message, p.field) for p in exc.problems])

    # when
    verified = await checked(f"  {user.email.upper()} ")
    refusals = [
        await checked(user.email, "a wrong password!"),
        await checked("nobody@example.com"),
        await checked(inactive.email),
    ]
    unknown = await users_service.find_sign_in_account(
        db_session, input=users_service.SignIn(email="nobody@example.com", password=PASSWORD)
    )

    # then
    assert verified == users_service.VerifiedSignIn(user_id=user.id, verified_hash=user.password_hash, new_hash=None)
    assert refusals == [str([(ErrorCode.INVALID_CREDENTIALS, INVALID_CREDENTIALS, None)])] * 3
    assert unknown is users_service.UNKNOWN_ACCOUNT


async def test_check_sign_in_password_refuses_an_account_without_a_hash_or_an_id() -> None:
    # given: what a dummy verification might match
    credentials = users_service.SignIn(email="a@example.com", password=PASSWORD)
    hashed = PasswordHash((Argon2Hasher(),)).hash(PASSWORD)

    # when / then
    for account in (
        users_service.SignInAccount(user_id=None, password_hash=hashed, is_active=True),
        users_service.SignInAccount(user_id=1, password_hash=None, is_active=True),
    ):
        with pytest.raises(InvalidCredentialsError):
            await users_service.check_sign_in_password(account=account, input=credentials)


# Accounts: registration's checks, and the roles an admin sets.


def test_a_password_is_too_similar_when_it_contains_the_address_its_local_part_or_a_name_of_three_letters() -> None:
    # given: each personal part inside an otherwise long password, and parts too short to count
    def problems(password: str, email: str = "jo@example.com", name: str = "Jo") -> list[tuple[str, str]]:
        try:
            users_service.AccountRegister.from_data({"email": email, "password": password, "name": name})
        except InvalidInputError as exc:
            return [(p.code, p.message) for p in exc.problems]
        return []

    # when
    refused = [
        problems("xx JO@EXAMPLE.COM xx"),
        problems("xx Joan xx", email="joan@example.com", name="J"),
        problems("xx Ann xxxx", email="zz@example.com", name=" ANN "),
    ]
    allowed = [problems("xx jo jo jo xx"), problems("xx zzz@example xx", email="zz@example.com", name="Al")]

    # then
    assert refused == [[(ErrorCode.PASSWORD_TOO_SIMILAR, "Do not use your e-mail address or name.")]] * 3
    assert allowed == [[], []]


def test_account_register_input_judges_similarity_with_the_other_problems_unless_the_password_has_one() -> None:
    # when
    with pytest.raises(InvalidInputError) as similar_and_bad_email:
        users_service.AccountRegister.from_data({"email": "Bart@", "password": "I am bart, hello", "name": "x" * 121})
    with pytest.raises(InvalidInputError) as short_and_blank_name:
        users_service.AccountRegister.from_data({"email": "bart@example.com", "password": "bart", "name": ""})

    # then
    assert [(p.code, p.field) for p in similar_and_bad_email.value.problems] == [
        (ErrorCode.INVALID, ("input", "email")),
        (ErrorCode.PASSWORD_TOO_SIMILAR, ("input", "password")),
        (ErrorCode.TOO_LONG, ("input", "name")),
    ]
    assert [(p.code, p.field) for p in short_and_blank_name.value.problems] == [
        (ErrorCode.TOO_SHORT, ("input", "password")),
        (ErrorCode.REQUIRED, ("input", "name")),
    ]


async def test_prepare_account_checks_similarity_however_the_input_was_built_and_hashes_the_password() -> None:
    # given: an input built past `from_data`
    similar = users_service.AccountRegister(email="bart@example.com", password="I am bart, hello", name="Bart")
    fine = users_service.AccountRegister(email="bart@example.com", password=PASSWORD, name="Bart")

    # when
    with pytest.raises(InvalidInputError) as refused:
        await users_service.prepare_account(input=similar)
    account = await users_service.prepare_account(input=fine)

    # then
    assert [(p.code, p.field) for p in refused.value.problems] == [
        (ErrorCode.PASSWORD_TOO_SIMILAR, ("input", "password"))
    ]
    assert (account.email, account.name) == ("bart@example.com", "Bart")
    assert PasswordHash.recommended().verify(PASSWORD, account.password_hash)


async def test_register_account_creates_a_customer_and_refuses_a_taken_address_keeping_the_transaction(
    db_session: AsyncSession,
) -> None:
    # given
    account = users_service.NewAccount(email="new@example.com", name="New", password_hash="$argon2id$x")

    # when
    user = await users_service.register_account(db_session, account=account)
    with pytest.raises(DomainError) as taken:
        await users_service.register_account(db_session, account=account)
    await db_session.commit()

    # then: the first account is kept, the second refused on the address
    stored = (await db_session.execute(select(users_models.User).where(users_models.User.id == user.id))).scalar_one()
    assert (stored.email, stored.name, stored.password_hash, stored.roles) == (
        "new@example.com",
        "New",
        "$argon2id$x",
        ["CUSTOMER"],
    )
    assert [(p.code, p.field) for p in taken.value.problems] == [(ErrorCode.ALREADY_EXISTS, ("input", "email"))]


async def test_set_user_roles_stores_each_role_once_in_order_and_keeps_an_admins_own_admin_role(
    db_session: AsyncSession,
) -> None:
    # given
    admin = await factories.create_user(db_session, roles=("ADMIN",))
    await db_session.commit()
    admin_id = admin.id

    # when: the admin adds roles to their own, then tries to drop ADMIN, then names a missing user
    kept = await users_service.set_user_roles(
        db_session,
        _principal(admin),
        input=users_service.UserRolesSet(user_id=admin_id, roles=(Role.STAFF, Role.ADMIN, Role.STAFF)),
    )
    await db_session.commit()
    with pytest.raises(DomainError) as own:
        await users_service.set_user_roles(
            db_session, _principal(admin), input=users_service.UserRolesSet(user_id=admin_id, roles=(Role.STAFF,))
        )
    with pytest.raises(NotFoundError) as missing:
        await users_service.set_user_roles(
            db_session, _principal(admin), input=users_service.UserRolesSet(user_id=admin_id + 1, roles=(Role.STAFF,))
        )
    await db_session.commit()

    # then
    assert kept.roles == ["ADMIN", "STAFF"]
    assert await _roles(db_session, admin_id) == ["ADMIN", "STAFF"]
    assert [p.code for p in own.value.problems] == [ErrorCode.CANNOT_REMOVE_OWN_ADMIN]
    assert [(p.code, p.message, p.field) for p in missing.value.problems] == [
        (ErrorCode.NOT_FOUND, "No such user.", ("input", "userId"))
    ]


def test_private_fields_are_visible_to_the_user_and_to_staff_only() -> None:
    # given
    def can_view(user_id: int | None, *roles: Role) -> bool:
        return users_service.can_view_private_fields(Principal(user_id=user_id, roles=frozenset(roles)), 7)

    # when / then
    assert [
        can_view(7, Role.CUSTOMER),
        can_view(8, Role.STAFF),
        can_view(8, Role.CUSTOMER),
        can_view(None),
    ] == [True, True, False, False]


def test_account_register_input_judges_similarity_against_what_was_given_when_other_fields_fail() -> None:
    # given: the name alone inside the password, with a bad address; and no address or name at all
    with pytest.raises(InvalidInputError) as name_inside:
        users_service.AccountRegister.from_data(
            {"email": "not-an-address", "password": "I am Bartholomew!", "name": " Bartholomew "}
        )
    with pytest.raises(InvalidInputError) as nothing_personal:
        users_service.AccountRegister.from_data({"password": "none, xxxx or null"})

    # then: a missing address or name counts as empty, so nothing in the password matches it
    assert [(p.code, p.field) for p in name_inside.value.problems] == [
        (ErrorCode.INVALID, ("input", "email")),
        (ErrorCode.PASSWORD_TOO_SIMILAR, ("input", "password")),
    ]
    assert [(p.code, p.field) for p in nothing_personal.value.problems] == [
        (ErrorCode.REQUIRED, ("input", "email")),
        (ErrorCode.REQUIRED, ("input", "name")),
    ]
