"""The `users/` endpoints: search, create (staff), read and update an account (docs/api.md,
"Roles").

Search never scans: persons and organizations are found by the start of their username in the
`directory` index (one Query of the partition of its first character); teams only within the
organization a `project=` or `organization=` filter names; `invert=1` lists the project's or the
organization's people from their own items.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.errors import ObjectNotFound, ValidationError
from chalicelib.models import Collaborator, Membership, Team, User
from chalicelib.models.base import get_many
from chalicelib.models.users import ORGANIZATION, TEAM, directory_partition_of
from chalicelib.rules.permissions import (
    AccountAction,
    Action,
    allowed_on_account,
    require,
    require_on_account,
)
from chalicelib.services.accounts import create_user, email_key_of, get_user, user_key
from chalicelib.services.auth import Caller, revoke_all_tokens
from chalicelib.services.inputs import UserCreate, UserSearchQuery, UserUpdate
from chalicelib.services.organizations import OrganizationView, get_organization, organization_view
from chalicelib.services.projects import get_project
from chalicelib.services.teams import team_username


@dataclass(frozen=True)
class AccountView:
    """An account as one caller sees it: oneself completely, an organization with its members
    and teams, anyone else by public information only."""

    account: User
    complete: bool = False
    organization: OrganizationView | None = None


def create_person(caller: Caller, data: UserCreate) -> User:
    require_on_account(caller.user, user_key(data.username), AccountAction.CREATE_USER)
    if not data.email.strip():
        raise ValidationError("`email` is required.")
    return create_user(data.username, data.password, email=data.email,
                       first_name=data.first_name, last_name=data.last_name)


def set_active(caller: Caller, username: str, active: bool) -> User:
    """Staff deactivate a person (their tokens stop working and are revoked; they cannot log in)
    or activate them again. Nothing of theirs is deleted."""
    user = get_user(username)
    require_on_account(caller.user, user.username_key, AccountAction.DEACTIVATE_USER)
    if not user.is_person:
        raise ValidationError(f"`{username}` is not a person.")
    if not active and user.username_key == caller.key:
        raise ValidationError("You cannot deactivate yourself.")
    user.update(actions=[User.is_active.set(active)], condition=User.username_key.exists())
    if not active:
        revoke_all_tokens(user)
    return user


def account_view(caller: Caller, username: str) -> AccountView:
    """GET users/<u>/: an organization the caller does not belong to is not shown (404)."""
    account = get_user(username)
    if account.is_organization:
        if not allowed_on_account(caller.user, account.username_key, AccountAction.READ_ORGANIZATION):
            raise ObjectNotFound(f"There is no user `{username}`.")
        membership = Membership.get(account.username_key, caller.key, consistent_read=True)
        return AccountView(account, organization=organization_view(account, membership))
    complete = allowed_on_account(caller.user, account.username_key, AccountAction.READ_PRIVATE_DETAILS)
    return AccountView(account, complete=complete)


def update_account(caller: Caller, username: str, data: UserUpdate) -> AccountView:
    """PUT/PATCH users/<u>/: names and email of oneself, or of an organization one administers
    (and its default project role for members). Usernames never change."""
    account = get_user(username)
    require_on_account(caller.user, account.username_key, AccountAction.UPDATE_ACCOUNT)
    if data.password is not None:
        raise ValidationError(
            "A password is not changed here: use POST /api/v1/auth/password/change/ with "
            "`current_password` and `new_password` (staff: POST /api/v1/users/<username>/password/).")
    if data.username is not None and user_key(data.username) != account.username_key:
        raise ValidationError("A username cannot be changed.")
    actions = []
    for field in ("first_name", "last_name"):
        if getattr(data, field) is not None:
            actions.append(getattr(User, field).set(getattr(data, field)))
    if data.email is not None:
        email = data.email.strip()
        email_key = email_key_of(account.account_type, email)
        actions += [User.email.set(email),
                    User.email_key.set(email_key) if email_key else User.email_key.remove()]
    if "default_project_role_for_members" in data.given():
        if not account.is_organization:
            raise ValidationError("Only an organization has a default project role for members.")
        role = data.default_project_role_for_members
        actions.append(User.default_project_role_for_members.set(role.label) if role
                       else User.default_project_role_for_members.remove())
    if actions:
        account.update(actions=actions, condition=User.username_key.exists())
    return account_view(caller, account.username) if account.is_organization else AccountView(
        account, complete=account.username_key == caller.key)


def _team_account(organization: User, team: Team) -> User:
    """A team as the user lists show it (its name claim, not read: built from the team)."""
    username = team_username(organization, team.name)
    return User(user_key(username), username=username, account_type=TEAM)


@dataclass
class _Scope:
    """What a `project=` or `organization=` filter narrows the search to."""

    related: list[User]  # the project's or organization's people (and teams)
    organization: User | None  # whose teams may be listed


def _project_scope(caller: Caller, project_id: str) -> _Scope:
    project = get_project(project_id)
    require(caller.user, project, Action.READ_PROJECT)
    rows = list(Collaborator.query(project.id))
    fetched = get_many([(User, project.owner_key)] + [(User, user_key(row.collaborator)) for row in rows],
                       consistent_read=False)
    related = fetched.all(User)
    organization = fetched.get(User, project.owner_key)
    return _Scope(related, organization if organization and organization.is_organization else None)


def _organization_scope(name: str) -> _Scope:
    organization = get_organization(name)
    memberships = list(Membership.query(organization.username_key))
    people = get_many((User, m.member_key) for m in memberships).all(User)
    return _Scope([organization, *people], organization)


def _matches(account: User, q: str) -> bool:
    return q in account.username.casefold()


def _directory(q: str) -> list[User]:
    if not q:
        return []
    return list(User.by_directory.query(directory_partition_of(q), User.username_key.startswith(q)))


def search(caller: Caller, query: UserSearchQuery) -> list[User]:
    """GET users/: accounts whose username contains `q` (persons and organizations: starts with
    it), ordered by where `q` appears, then by username."""
    require_on_account(caller.user, caller.key, AccountAction.SEARCH_USERS)
    q = query.q.strip().casefold()
    scope = None
    if query.project is not None:
        scope = _project_scope(caller, query.project)
    elif query.organization is not None:
        scope = _organization_scope(query.organization)
    if scope is not None and query.invert:
        found = scope.related
    else:
        excluded = {account.username_key for account in scope.related} if scope else set()
        found = [account for account in _directory(q) if account.username_key not in excluded]
        if scope is not None and scope.organization is not None:
            teams = Team.query(scope.organization.username_key)
            found += [account for team in teams
                      if (account := _team_account(scope.organization, team)).username_key not in excluded]
    if query.exclude_organizations:
        found = [account for account in found if account.account_type != ORGANIZATION]
    if query.exclude_teams:
        found = [account for account in found if account.account_type != TEAM]
    found = [account for account in found if _matches(account, q)]
    return sorted(found, key=lambda a: (a.username.casefold().find(q), a.username_key))

