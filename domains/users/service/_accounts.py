"""Accounts: registration (its input checked, its password hashed holding no connection) and roles."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Self

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, StringConstraints
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.exceptions import ErrorCode, FieldProblem, InvalidInputError, NotFoundError
from domains.common.keyset import Page, PageRequest
from domains.common.principal import Principal, Role, require_role
from domains.common.validation import FrozenInput, in_field_order, validated
from domains.users import repository as users_repository
from domains.users.exceptions import CannotRemoveOwnAdminError, EmailTakenError
from domains.users.models import User, UserView
from domains.users.passwords import hash_password

EMAIL_MAX_LENGTH = 254
NAME_MAX_LENGTH = 120
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128
INVALID_EMAIL = "Enter a valid e-mail address."
PASSWORD_FIELD = ("input", "password")


def can_view_private_fields(principal: Principal, user_id: int) -> bool:
    """Tell whether the principal may see a user's e-mail, roles and orders: the user or staff."""
    return principal.user_id == user_id or principal.is_staff


def normalize_email(email: str) -> str:
    """Return the stored form of an e-mail address: trimmed and lower-cased."""
    return email.strip().lower()


def user_roles(user: User) -> frozenset[Role]:
    """Return the roles stored on a user."""
    return frozenset(Role(role) for role in user.roles)


def _deliverable_form(email: str) -> str:
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(INVALID_EMAIL) from exc
    return email


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH)]


class AccountRegister(FrozenInput):
    """A new customer account: its e-mail address is stored trimmed and lower-cased, its name trimmed."""

    email: Annotated[
        str,
        StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=EMAIL_MAX_LENGTH),
        AfterValidator(_deliverable_form),
        Field(description=INVALID_EMAIL),
    ]
    password: Annotated[str, Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)]
    name: Name

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """Validate a registration; raise InvalidInputError with every problem, in the order of the fields."""
        try:
            account = validated(cls, data)
        except InvalidInputError as exc:
            problems = list(exc.problems)
            # A password is judged for similarity once its length is right, as when everything else is.
            if all(problem.field != PASSWORD_FIELD for problem in problems):
                email, name = normalize_email(str(data.get("email", ""))), str(data.get("name", "")).strip()
                problems += _similarity_problems(str(data.get("password", "")), email=email, name=name)
            raise InvalidInputError(in_field_order(cls, problems)) from exc
        problems = _similarity_problems(account.password, email=account.email, name=account.name)
        if problems:
            raise InvalidInputError(problems)
        return account


def _similarity_problems(password: str, *, email: str, name: str) -> list[FieldProblem]:
    lowered = password.lower()
    personal = [part for part in (email.split("@")[0], email, name.lower()) if len(part) >= 3]
    if any(part in lowered for part in personal):
        return [FieldProblem(ErrorCode.PASSWORD_TOO_SIMILAR, "Do not use your e-mail address or name.", PASSWORD_FIELD)]
    return []


@dataclass(frozen=True, slots=True)
class NewAccount:
    """A registration whose input passed every check, with its password already hashed."""

    email: str
    name: str
    password_hash: str


async def prepare_account(*, input: AccountRegister) -> NewAccount:
    """Hash a registration's password; hold no database connection while awaiting it.

    Anyone may register, so no principal is asked for: the account is only ever a customer's.
    """
    # Checked here too, whoever built the input: `from_data` only reports it with the other problems.
    problems = _similarity_problems(input.password, email=input.email, name=input.name)
    if problems:
        raise InvalidInputError(problems)
    return NewAccount(email=input.email, name=input.name, password_hash=await hash_password(input.password))


async def register_account(session: AsyncSession, *, account: NewAccount) -> User:
    """Create a customer account; the unique constraint keeps e-mail addresses unique regardless of case."""
    user = User(
        email=account.email, name=account.name, password_hash=account.password_hash, roles=[Role.CUSTOMER.value]
    )
    try:
        # A savepoint: a taken address (also by a concurrent registration) fails here without ending the transaction.
        async with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:
        raise EmailTakenError from exc
    return user


class UserRolesSet(FrozenInput):
    """A user and the roles that replace theirs: at least one."""

    user_id: int
    roles: Annotated[tuple[Role, ...], Field(min_length=1)]


async def set_user_roles(session: AsyncSession, principal: Principal, *, input: UserRolesSet) -> User:
    """Replace a user's roles; admins only, and an admin cannot take their own ADMIN role away."""
    admin_id = require_role(principal, Role.ADMIN)
    user = await users_repository.get_user(session, input.user_id)
    if user is None:
        raise NotFoundError("No such user.", ("input", "userId"))
    granted = sorted(set(input.roles))
    if user.id == admin_id and Role.ADMIN not in granted:
        raise CannotRemoveOwnAdminError
    user.roles = [role.value for role in granted]
    await session.flush()
    return user


async def list_users(session: AsyncSession, principal: Principal, *, page: PageRequest) -> Page[UserView]:
    """List one keyset page of every account, newest first; admins only."""
    require_role(principal, Role.ADMIN)
    return await users_repository.list_users(session, page)


async def count_users(session: AsyncSession, principal: Principal) -> int:
    """Count every account; admins only."""
    require_role(principal, Role.ADMIN)
    return await users_repository.count_users(session)
