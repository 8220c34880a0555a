"""Who may do what: the two tables of the permission model, and how roles are resolved.

- On a project: the role (reader < reporter < editor < manager < admin) comes from an origin;
  when several origins apply, the first in `ORIGIN_RANK` order wins, as in QFieldCloud (a direct
  `reader` collaborator stays `reader` even if a team gives `editor`). `MINIMUM_ROLE` gives the
  lowest role each `Action` needs. What links a user to a project (`Ties`: the owning account,
  the user's membership in it, the user's and their teams' collaborator rows) is read in at most
  two BatchGetItem calls, however many organizations, teams and members exist.
- On an account (a person, an organization): the caller's `AccountRole`s towards it (read from
  one membership item at most) decide, through `ACCOUNT_PERMISSIONS`, which `AccountAction`s are
  allowed.

Nothing else compares roles: services call `require(...)`/`allowed(...)` with an `Action`, or
`require_on_account(...)`/`allowed_on_account(...)` with an `AccountAction`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pynamodb.exceptions import DoesNotExist

from chalicelib.errors import PermissionDenied
from chalicelib.models import Collaborator, Membership, Project, User
from chalicelib.models.base import get_many
from chalicelib.models.collaborators import team_collaborator_key
from chalicelib.models.organizations import MemberRole
from chalicelib.models.roles import Origin, Role
from chalicelib.rules import plans

ORIGIN_RANK = list(Origin)


class Action(StrEnum):
    READ_PROJECT = "read_project"
    UPDATE_PROJECT = "update_project"
    TRANSFER_PROJECT = "transfer_project"  # change the owner: deliberately above manager
    DELETE_PROJECT = "delete_project"
    UPLOAD_THUMBNAIL = "upload_thumbnail"
    READ_FILES = "read_files"
    UPLOAD_ATTACHMENT = "upload_attachment"
    UPLOAD_FILE = "upload_file"
    UPLOAD_RESTRICTED_FILE = "upload_restricted_file"
    DELETE_FILE = "delete_file"
    MANAGE_COLLABORATORS = "manage_collaborators"
    READ_JOBS = "read_jobs"
    CREATE_PACKAGE_JOB = "create_package_job"
    CREATE_JOB = "create_job"  # process_projectfile, delta_apply
    READ_PACKAGE = "read_package"
    READ_DELTAS = "read_deltas"
    UPLOAD_DELTAS = "upload_deltas"  # also POST deltas/apply/
    CREATE_FEATURE = "create_feature"  # a delta's `create`
    CHANGE_FEATURE = "change_feature"  # a delta's `patch` or `delete`; a reporter's are unpermitted


# The one table: the lowest role allowed to perform each action (docs/api.md, "Roles"; upstream,
# docker-app/qfieldcloud/core/permissions_utils.py in https://github.com/opengisch/QFieldCloud).
MINIMUM_ROLE: dict[Action, Role] = {
    Action.READ_PROJECT: Role.READER,
    Action.UPDATE_PROJECT: Role.MANAGER,
    # QFieldCloud lets a manager transfer a project, even to themselves, locking the owner out;
    # here only the admin role may (the owner, an organization's owner or admin). docs/security.md
    Action.TRANSFER_PROJECT: Role.ADMIN,
    Action.DELETE_PROJECT: Role.MANAGER,
    Action.UPLOAD_THUMBNAIL: Role.REPORTER,
    Action.READ_FILES: Role.READER,
    Action.UPLOAD_ATTACHMENT: Role.REPORTER,
    Action.UPLOAD_FILE: Role.EDITOR,
    Action.UPLOAD_RESTRICTED_FILE: Role.MANAGER,
    Action.DELETE_FILE: Role.EDITOR,
    Action.MANAGE_COLLABORATORS: Role.MANAGER,
    Action.READ_JOBS: Role.READER,
    Action.CREATE_PACKAGE_JOB: Role.READER,
    Action.CREATE_JOB: Role.REPORTER,
    Action.READ_PACKAGE: Role.READER,
    Action.READ_DELTAS: Role.REPORTER,
    Action.UPLOAD_DELTAS: Role.REPORTER,
    Action.CREATE_FEATURE: Role.REPORTER,
    Action.CHANGE_FEATURE: Role.EDITOR,
}


# Actions that need a *valid* role (docs/api.md, "Roles"): only retrieving the project itself.
NEEDS_VALID_ROLE = frozenset({Action.READ_PROJECT})
# Origins whose role a private project over its plan's collaborator limit makes invalid; the
# owner and the organization's owner and admins keep theirs (they are the ones who can fix it).
LIMITED_ORIGINS = frozenset({Origin.COLLABORATOR, Origin.TEAM_MEMBER, Origin.ORGANIZATION_MEMBER})
ORGANIZATION_ORIGINS = {MemberRole.OWNER: Origin.ORGANIZATION_OWNER,
                        MemberRole.ADMIN: Origin.ORGANIZATION_ADMIN}


@dataclass(frozen=True)
class ProjectRole:
    role: Role
    origin: Origin
    is_valid: bool = True


@dataclass(frozen=True)
class Ties:
    """What links one user to one project, as read from the tables. `owner` (the project's owner
    account) is needed for an organization's default role and for the plan's validity rule; the
    rest is None or empty when it does not exist."""

    owner: User | None = None
    membership: Membership | None = None
    collaborator: Collaborator | None = None
    team_collaborators: Sequence[Collaborator] = ()


def _rank(candidate: ProjectRole) -> int:
    return ORIGIN_RANK.index(candidate.origin)


def _candidates(user: User, project: Project, ties: Ties) -> list[ProjectRole]:
    candidates: list[ProjectRole] = []
    if project.owner_key == user.username_key:
        candidates.append(ProjectRole(Role.ADMIN, Origin.PROJECT_OWNER))
    membership = ties.membership
    if membership is not None and membership.organization_key != project.owner_key:
        membership = None
    if membership is not None and membership.role in ORGANIZATION_ORIGINS:
        candidates.append(ProjectRole(Role.ADMIN, ORGANIZATION_ORIGINS[MemberRole(membership.role)]))
    # On an organization's project, collaborations count only while the person is a member:
    # removing a member takes their access away at once, whatever rows are left to clean up.
    if ties.collaborator is not None and (membership is not None or not project.owner_is_organization):
        candidates.append(ProjectRole(Role.from_label(ties.collaborator.role), Origin.COLLABORATOR))
    if membership is not None:
        team_roles = [Role.from_label(row.role) for row in ties.team_collaborators
                      if row.team_id in (membership.team_ids or ())]
        if team_roles:
            candidates.append(ProjectRole(max(team_roles), Origin.TEAM_MEMBER))
        owner = ties.owner
        if owner is not None and owner.username_key == project.owner_key \
                and owner.default_project_role_for_members:
            candidates.append(ProjectRole(Role.from_label(owner.default_project_role_for_members),
                                          Origin.ORGANIZATION_MEMBER))
    if project.is_public:
        candidates.append(ProjectRole(Role.from_label(project.public_collaborator_role or "reader"),
                                      Origin.PUBLIC))
    return candidates


def role_from(user: User, project: Project, ties: Ties) -> ProjectRole | None:
    """The effective role, from what is already known about the user and the project."""
    candidates = _candidates(user, project, ties)
    if not candidates:
        return None
    best = min(candidates, key=_rank)
    if best.origin in LIMITED_ORIGINS and plans.too_many_collaborators(project, ties.owner):
        return ProjectRole(best.role, best.origin, is_valid=False)
    return best


def read_ties(user: User, project: Project) -> Ties:
    """The user's ties to the project: one consistent BatchGetItem (the owner account, the
    membership in it, the user's collaborator row), and one more for the rows of the user's teams
    in the owning organization when there are any."""
    keys = [(User, project.owner_key), (Collaborator, project.id, user.username_key)]
    if project.owner_is_organization:
        keys.append((Membership, project.owner_key, user.username_key))
    fetched = get_many(keys)
    membership = fetched.get(Membership, project.owner_key, user.username_key)
    team_rows: list[Collaborator] = []
    if membership is not None and membership.team_ids:
        team_keys = [(Collaborator, project.id, team_collaborator_key(team_id))
                     for team_id in sorted(membership.team_ids)]
        team_rows = get_many(team_keys).all(Collaborator)
    return Ties(
        owner=fetched.get(User, project.owner_key),
        membership=membership,
        collaborator=fetched.get(Collaborator, project.id, user.username_key),
        team_collaborators=team_rows,
    )


def memberships_of(user_key: str) -> tuple[dict[str, Membership], dict[str, User]]:
    """A user's memberships and their organizations, by organization key: one Query of the
    user's index, then one consistent batch of the items themselves (a membership removed a
    moment ago is gone from the batch even while the index still lists it)."""
    keys = list(Membership.by_member.query(user_key))
    fetched = get_many([(Membership, m.organization_key, m.member_key) for m in keys]
                       + [(User, m.organization_key) for m in keys])
    memberships = {m.organization_key: m for m in fetched.all(Membership)}
    organizations = {key: org for key in memberships if (org := fetched.get(User, key)) is not None}
    return memberships, organizations


@dataclass(frozen=True)
class CallerTies:
    """Everything that links a user to projects, for lists: the user's collaborator rows, their
    memberships with the organizations, and the collaborator rows of their teams."""

    collaborations: dict[str, Collaborator]
    memberships: dict[str, Membership]
    organizations: dict[str, User]
    team_rows: dict[str, list[Collaborator]]

    def ties(self, project: Project) -> Ties:
        return Ties(
            owner=self.organizations.get(project.owner_key),
            membership=self.memberships.get(project.owner_key),
            collaborator=self.collaborations.get(project.id),
            team_collaborators=self.team_rows.get(project.id, ()),
        )

    def project_ids(self) -> set[str]:
        """Projects the user collaborates on, directly or through a team."""
        return set(self.collaborations) | set(self.team_rows)

    def organizations_seen_whole(self) -> list[str]:
        """Organizations all of whose projects the user has a role on: those they own or
        administer, and those that give every member a default role."""
        return sorted(
            key for key, membership in self.memberships.items()
            if membership.role in ORGANIZATION_ORIGINS
            or (key in self.organizations and self.organizations[key].default_project_role_for_members)
        )


def read_caller_ties(user: User) -> CallerTies:
    """Two Queries and one BatchGetItem, plus one Query per team of the user (the teams come
    from the memberships: a team the user just left is not read) in the organizations the user
    does not own or administer (there a team cannot outrank the user's admin role)."""
    collaborations = {row.project_id: row for row in Collaborator.by_collaborator.query(user.username_key)}
    memberships, organizations = memberships_of(user.username_key)
    team_rows: dict[str, list[Collaborator]] = {}
    for team_id in teams_that_count(memberships):
        for row in Collaborator.by_collaborator.query(team_collaborator_key(team_id)):
            team_rows.setdefault(row.project_id, []).append(row)
    return CallerTies(collaborations, memberships, organizations, team_rows)


def teams_that_count(memberships: dict[str, Membership]) -> list[str]:
    """The teams whose collaborator rows may give the user a role: theirs, except in the
    organizations they own or administer (there a team cannot outrank their admin role)."""
    return [team_id for membership in memberships.values() if membership.role not in ORGANIZATION_ORIGINS
            for team_id in sorted(membership.team_ids or ())]


def project_role(user: User, project: Project) -> ProjectRole | None:
    """The user's effective role on the project (no read for its owner; otherwise `read_ties`)."""
    if project.owner_key == user.username_key:
        return ProjectRole(Role.ADMIN, Origin.PROJECT_OWNER)
    return role_from(user, project, read_ties(user, project))


class AccountRole(StrEnum):
    SELF = "self"  # the account is the caller's own
    AUTHENTICATED = "authenticated"  # any signed-in user
    STAFF = "staff"  # a server administrator
    ORGANIZATION_OWNER = "organization_owner"
    ORGANIZATION_ADMIN = "organization_admin"
    ORGANIZATION_CREATOR = "organization_creator"
    ORGANIZATION_MEMBER = "organization_member"


class AccountAction(StrEnum):
    READ_SUBSCRIPTION = "read_subscription"
    CREATE_PROJECT = "create_project"  # a project owned by this account
    USE_UPLOAD_SESSION = "use_upload_session"  # a presigned upload this account began
    CREATE_USER = "create_user"  # POST users/
    SET_PASSWORD = "set_password"  # POST users/<u>/password/: another's password, no current one
    DEACTIVATE_USER = "deactivate_user"  # POST users/<u>/deactivate/, activate/
    CHANGE_PASSWORD = "change_password"  # POST auth/password/change/: with the current password
    MANAGE_TOKENS = "manage_tokens"  # GET auth/tokens/, DELETE auth/tokens/<id>/
    SEARCH_USERS = "search_users"  # GET users/
    READ_PRIVATE_DETAILS = "read_private_details"  # the complete user, with email
    READ_ORGANIZATION = "read_organization"  # GET users/<org>/ (others get 404)
    UPDATE_ACCOUNT = "update_account"  # PUT/PATCH users/<u>/
    LIST_ORGANIZATIONS = "list_organizations"  # GET users/<u>/organizations/
    CREATE_ORGANIZATION = "create_organization"  # POST organizations/ (the caller owns it)
    READ_MEMBERS = "read_members"
    MANAGE_MEMBERS = "manage_members"  # add, change, remove members
    READ_TEAMS = "read_teams"  # teams and their members
    MANAGE_TEAMS = "manage_teams"  # create, rename, delete teams; add, remove their members
    PATCH_TEAM = "patch_team"  # routed upstream, always refused


_ORGANIZATION_STAFF = frozenset({AccountRole.ORGANIZATION_OWNER, AccountRole.ORGANIZATION_ADMIN})
_ORGANIZATION_PEOPLE = _ORGANIZATION_STAFF | {AccountRole.ORGANIZATION_CREATOR,
                                              AccountRole.ORGANIZATION_MEMBER}

# The second table: which roles towards an account allow each action on it (docs/api.md, "Roles").
ACCOUNT_PERMISSIONS: dict[AccountAction, frozenset[AccountRole]] = {
    AccountAction.READ_SUBSCRIPTION: frozenset({AccountRole.SELF}) | _ORGANIZATION_PEOPLE,
    AccountAction.CREATE_PROJECT: frozenset({AccountRole.SELF, AccountRole.ORGANIZATION_CREATOR})
    | _ORGANIZATION_STAFF,
    AccountAction.USE_UPLOAD_SESSION: frozenset({AccountRole.SELF}),
    AccountAction.CREATE_USER: frozenset({AccountRole.STAFF}),
    AccountAction.SET_PASSWORD: frozenset({AccountRole.STAFF}),
    AccountAction.DEACTIVATE_USER: frozenset({AccountRole.STAFF}),
    AccountAction.CHANGE_PASSWORD: frozenset({AccountRole.SELF}),
    AccountAction.MANAGE_TOKENS: frozenset({AccountRole.SELF}),
    AccountAction.SEARCH_USERS: frozenset({AccountRole.AUTHENTICATED}),
    AccountAction.READ_PRIVATE_DETAILS: frozenset({AccountRole.SELF}),
    AccountAction.READ_ORGANIZATION: _ORGANIZATION_PEOPLE,
    AccountAction.UPDATE_ACCOUNT: frozenset({AccountRole.SELF}) | _ORGANIZATION_STAFF,
    AccountAction.LIST_ORGANIZATIONS: frozenset({AccountRole.SELF}),
    AccountAction.CREATE_ORGANIZATION: frozenset({AccountRole.AUTHENTICATED}),
    AccountAction.READ_MEMBERS: frozenset({AccountRole.AUTHENTICATED}),
    AccountAction.MANAGE_MEMBERS: _ORGANIZATION_STAFF,
    AccountAction.READ_TEAMS: frozenset({AccountRole.AUTHENTICATED}),
    AccountAction.MANAGE_TEAMS: _ORGANIZATION_STAFF,
    AccountAction.PATCH_TEAM: frozenset(),
}

MEMBERSHIP_ROLES = {
    MemberRole.OWNER: AccountRole.ORGANIZATION_OWNER,
    MemberRole.ADMIN: AccountRole.ORGANIZATION_ADMIN,
    MemberRole.CREATOR: AccountRole.ORGANIZATION_CREATOR,
    MemberRole.MEMBER: AccountRole.ORGANIZATION_MEMBER,
}


def _roles_without_reads(user: User, account_key: str) -> frozenset[AccountRole]:
    roles = {AccountRole.AUTHENTICATED}
    if user.username_key == account_key:
        roles.add(AccountRole.SELF)
    if user.is_staff:
        roles.add(AccountRole.STAFF)
    return frozenset(roles)


def _membership_roles(user: User, account_key: str) -> frozenset[AccountRole]:
    """The caller's role in the organization `account_key` (one GetItem; none for a person)."""
    if user.username_key == account_key:
        return frozenset()
    try:
        membership = Membership.get(account_key, user.username_key, consistent_read=True)
    except DoesNotExist:
        return frozenset()
    return frozenset({MEMBERSHIP_ROLES[MemberRole(membership.role)]})


def account_roles(user: User, account_key: str) -> frozenset[AccountRole]:
    """The caller's roles towards the account whose username key is `account_key`."""
    return _roles_without_reads(user, account_key) | _membership_roles(user, account_key)


def roles_for(user: User, account_key: str, action: AccountAction) -> frozenset[AccountRole]:
    """The caller's roles towards the account, reading the membership only when the roles known
    without a read do not already allow `action`."""
    roles = _roles_without_reads(user, account_key)
    if roles & ACCOUNT_PERMISSIONS[action]:
        return roles
    return account_roles(user, account_key)


def allowed_on_account(user: User, account_key: str, action: AccountAction) -> bool:
    return bool(roles_for(user, account_key, action) & ACCOUNT_PERMISSIONS[action])


def require_on_account(user: User, account_key: str, action: AccountAction) -> frozenset[AccountRole]:
    """403 `permission_denied` unless the user may perform `action` on the account; the roles
    that were found otherwise."""
    roles = roles_for(user, account_key, action)
    if not roles & ACCOUNT_PERMISSIONS[action]:
        raise PermissionDenied(f"You are not allowed to {action.replace('_', ' ')} of this account.")
    return roles


def joins_new_project_as_admin(roles: frozenset[AccountRole]) -> bool:
    """An organization's `creator` who creates a project for it becomes its admin collaborator
    (owners and admins are admins of every organization project already)."""
    return AccountRole.ORGANIZATION_CREATOR in roles and not roles & _ORGANIZATION_STAFF


def membership_origin(role: str) -> str:
    """`membership_role_origin` of an organization as QFieldCloud shows it."""
    return "organization_owner" if role == MemberRole.OWNER else "organization_member"


def membership_role_label(role: str) -> str:
    """The owner shows as `admin`, as in QFieldCloud's organizations view."""
    return MemberRole.ADMIN if role == MemberRole.OWNER else role


def allowed(role: ProjectRole | None, action: Action) -> bool:
    if role is None or (action in NEEDS_VALID_ROLE and not role.is_valid):
        return False
    return role.role >= MINIMUM_ROLE[action]


def require(user: User, project: Project, action: Action) -> ProjectRole:
    """The user's role, if it allows `action`; otherwise 403 `permission_denied`."""
    role = project_role(user, project)
    if not allowed(role, action):
        raise PermissionDenied(f"You are not allowed to {action.replace('_', ' ')} here.")
    return role
