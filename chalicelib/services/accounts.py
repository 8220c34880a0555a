"""User accounts: usernames, passwords, login and its lockout after repeated failures."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pynamodb.exceptions import DoesNotExist

from chalicelib.config import settings
from chalicelib.errors import AuthenticationFailed, ObjectAlreadyExists, ObjectNotFound, ValidationError
from chalicelib.models import Project, User
from chalicelib.models.base import save_new
from chalicelib.models.users import PERSON, directory_partition_of
from chalicelib.rules import login_throttle, plans, quota
from chalicelib.rules.permissions import AccountAction, require_on_account

USERNAME_PATTERN = re.compile(r"^[a-zA-Z][-a-zA-Z0-9_]{2,149}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+$")
RESERVED_USERNAMES = frozenset({
    "user", "users", "project", "projects", "owner", "push", "file", "files", "collaborator",
    "collaborators", "member", "members", "organization", "qfield", "qfieldcloud", "history",
    "version", "delta", "deltas", "deltafile", "auth", "qfield-files", "esri",
})

@cache
def _hasher_for(cheap: bool) -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1) if cheap else PasswordHasher()


def _hasher() -> PasswordHasher:
    return _hasher_for(settings.password_hash_cheap)


@cache
def _dummy_hash() -> str:
    """Verified when the username is unknown, so that a miss costs as long as a wrong password.
    Made on first use: a cold start that serves no login need not pay for an argon2 hash."""
    return _hasher().hash("not a password")


def user_key(username: str) -> str:
    return username.strip().lower()


def validate_username(username: str) -> None:
    if not USERNAME_PATTERN.match(username):
        raise ValidationError(
            "A username has 3 to 150 letters, digits, `-` or `_`, and starts with a letter."
        )
    if username.lower() in RESERVED_USERNAMES:
        raise ValidationError(f"`{username}` is a reserved word and cannot be a username.")


def validate_password(password: str) -> None:
    if len(password) < 8:
        raise ValidationError("A password has at least 8 characters.")


def find_user(username: str) -> User | None:
    """The account (person, organization or team name claim) with this username, any case."""
    try:
        return User.get(user_key(username))
    except DoesNotExist:
        return None


def get_user(username: str) -> User:
    user = find_user(username)
    if user is None:
        raise ObjectNotFound(f"There is no user `{username}`.")
    return user


def owner_of(project: Project, caller_user: User) -> User:
    """The project's owner (whose storage its bytes count against): the caller's own user, read
    for this request already, when the caller is the owner."""
    if project.owner_key == caller_user.username_key:
        return caller_user
    return get_user(project.owner)


def find_person(username_or_email: str) -> User | None:
    """An active person by username or, failing that, by email."""
    user = find_user(username_or_email)
    if user is None and "@" in username_or_email:
        user = _user_for_login(None, username_or_email)
    return user if user is not None and user.is_person and user.is_active else None


def _check_email(email: str) -> str:
    email = email.strip()
    if email and not EMAIL_PATTERN.match(email):
        raise ValidationError(f"`{email}` is not a valid email address.")
    return email


def _email_is_taken(email: str) -> bool:
    """Best effort (a GSI read): logins by email need emails to name one person."""
    return any(user.is_person for user in User.by_email.query(email.lower(), limit=1))


def new_account(username: str, account_type: int, *, email: str = "", **fields) -> User:
    """An account item not yet saved: checked username, the directory entry for searches. Only
    persons are found by email (logins): an organization may share its owner's address."""
    validate_username(username)
    email = _check_email(email)
    key = user_key(username)
    return User(key, username=username, account_type=account_type, email=email,
                email_key=email_key_of(account_type, email),
                directory_partition=directory_partition_of(key), **fields)


def email_key_of(account_type: int, email: str) -> str | None:
    return email.lower() or None if account_type == PERSON else None


def create_user(
    username: str,
    password: str,
    *,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
) -> User:
    """A person. A taken username is 409 `object_already_exists` (checked first: the SDK's
    `create-user --exist-ok` reads a 409 as "exists"); an email that another person has is 400."""
    user = new_account(username, PERSON, email=email, first_name=first_name, last_name=last_name,
                       is_staff=is_staff)
    taken = ObjectAlreadyExists(f"The username `{username}` is taken.")
    if find_user(username) is not None:
        raise taken
    if user.email and _email_is_taken(user.email):
        raise ValidationError(f"Another user has the email address `{user.email}`.")
    validate_password(password)
    user.password_hash = _hasher().hash(password)
    save_new(user, User.username_key, taken)
    return user


def set_password(user: User, password: str) -> None:
    validate_password(password)
    user.update(actions=[User.password_hash.set(_hasher().hash(password))])


def _user_for_login(username: str | None, email: str | None) -> User | None:
    if email:
        matches = list(User.by_email.query(email.strip().lower(), limit=1))
        return matches[0] if matches else None
    return find_user(username) if username else None


def authenticate_credentials(username: str | None, email: str | None, password: str,
                             source_address: str | None = None) -> User:
    """The user these credentials belong to. The attempt is counted against the account the
    username or email names (the same account either way) and the caller's address before the
    password is checked (`login_throttle`)."""
    if not (email or username):
        raise AuthenticationFailed()
    user = _user_for_login(username, email)
    account = user.username_key if user else "?" + (email or username or "").strip().lower()
    admission = login_throttle.admit(account, source_address)
    password_hash = user.password_hash if user and user.password_hash else _dummy_hash()
    try:
        verified = _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        verified = False
    if not (verified and user and user.is_active and user.account_type == PERSON):
        admission.failed()
        raise AuthenticationFailed()
    admission.succeeded()
    return user


@dataclass(frozen=True)
class Subscription:
    """An account's plan: one plan for everyone here, with the account's own figures."""

    account: User
    storage_total_bytes: int
    max_premium_collaborators_per_private_project: int
    max_organization_members: int | None  # organizations only


def subscription(caller: User, username: str) -> Subscription:
    require_on_account(caller, user_key(username), AccountAction.READ_SUBSCRIPTION)
    account = caller if user_key(username) == caller.username_key else get_user(username)
    return Subscription(
        account,
        quota.quota_bytes(account),
        plans.max_collaborators(account),
        plans.max_members(account) if account.is_organization else None,
    )
