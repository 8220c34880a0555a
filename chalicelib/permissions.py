"""Who may do what: the two tables of the permission model.

- On a project: the role (reader < reporter < editor < manager < admin) comes from an origin;
  when several origins apply, the first in `ORIGIN_RANK` order wins, as in QFieldCloud (a direct
  `reader` collaborator stays `reader` on a public project). `MINIMUM_ROLE` gives the lowest role
  each `Action` needs.
- On an account (a user, later an organization): the caller's `AccountRole`s towards it decide,
  through `ACCOUNT_PERMISSIONS`, which `AccountAction`s are allowed.

Nothing else compares roles: services call `require(...)`/`allowed(...)` with an `Action`, or
`require_on_account(...)`/`allowed_on_account(...)` with an `AccountAction`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from pynamodb.exceptions import DoesNotExist

from .errors import PermissionDenied
from .models import Collaborator, Project, User


class Role(IntEnum):
    READER = 1
    REPORTER = 2
    EDITOR = 3
    MANAGER = 4
    ADMIN = 5

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, value: object) -> Role:
        """`reader`, `Editor`, ... (case and spaces ignored); ValueError otherwise."""
        if isinstance(value, str) and value.strip().upper() in cls.__members__:
            return cls[value.strip().upper()]
        raise ValueError(f"must be one of: {', '.join(role.label for role in cls)}")


class Origin(StrEnum):
    PROJECT_OWNER = "project_owner"
    ORGANIZATION_OWNER = "organization_owner"
    ORGANIZATION_ADMIN = "organization_admin"
    COLLABORATOR = "collaborator"
    TEAM_MEMBER = "team_member"
    ORGANIZATION_MEMBER = "organization_member"
    PUBLIC = "public"


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


# The one table: the lowest role allowed to perform each action (reference §2.3).
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


@dataclass(frozen=True)
class ProjectRole:
    role: Role
    origin: Origin


def role_from(user: User, project: Project, collaborator: Collaborator | None) -> ProjectRole | None:
    """The effective role, from what is already known about the user and the project."""
    candidates: list[ProjectRole] = []
    if project.owner_key == user.username_key:
        candidates.append(ProjectRole(Role.ADMIN, Origin.PROJECT_OWNER))
    if collaborator is not None:
        candidates.append(ProjectRole(Role[collaborator.role.upper()], Origin.COLLABORATOR))
    if project.is_public:
        candidates.append(ProjectRole(Role.READER, Origin.PUBLIC))
    if not candidates:
        return None
    return min(candidates, key=lambda candidate: ORIGIN_RANK.index(candidate.origin))


def project_role(user: User, project: Project) -> ProjectRole | None:
    """The user's effective role on the project (at most one extra GetItem)."""
    if project.owner_key == user.username_key:
        return ProjectRole(Role.ADMIN, Origin.PROJECT_OWNER)
    try:
        collaborator = Collaborator.get(project.id, user.username_key)
    except DoesNotExist:
        collaborator = None
    return role_from(user, project, collaborator)


class AccountRole(StrEnum):
    SELF = "self"  # the account is the caller's own
    ORGANIZATION_OWNER = "organization_owner"
    ORGANIZATION_ADMIN = "organization_admin"
    ORGANIZATION_MEMBER = "organization_member"
    STAFF = "staff"  # a server administrator


class AccountAction(StrEnum):
    READ_SUBSCRIPTION = "read_subscription"
    CREATE_PROJECT = "create_project"  # a project owned by this account
    USE_UPLOAD_SESSION = "use_upload_session"  # a presigned upload this account began


# The second table: which roles towards an account allow each action on it (reference §2.4).
ACCOUNT_PERMISSIONS: dict[AccountAction, frozenset[AccountRole]] = {
    AccountAction.READ_SUBSCRIPTION: frozenset({
        AccountRole.SELF, AccountRole.ORGANIZATION_OWNER, AccountRole.ORGANIZATION_ADMIN,
        AccountRole.ORGANIZATION_MEMBER,
    }),
    AccountAction.CREATE_PROJECT: frozenset({
        AccountRole.SELF, AccountRole.ORGANIZATION_OWNER, AccountRole.ORGANIZATION_ADMIN,
    }),
    AccountAction.USE_UPLOAD_SESSION: frozenset({AccountRole.SELF}),
}


def account_roles(user: User, account_key: str) -> frozenset[AccountRole]:
    """The caller's roles towards the account whose username key is `account_key`."""
    roles = set()
    if user.username_key == account_key:
        roles.add(AccountRole.SELF)
    if user.is_staff:
        roles.add(AccountRole.STAFF)
    return frozenset(roles)


def allowed_on_account(user: User, account_key: str, action: AccountAction) -> bool:
    return bool(account_roles(user, account_key) & ACCOUNT_PERMISSIONS[action])


def require_on_account(user: User, account_key: str, action: AccountAction) -> None:
    """403 `permission_denied` unless the user may perform `action` on the account."""
    if not allowed_on_account(user, account_key, action):
        raise PermissionDenied(f"You are not allowed to {action.replace('_', ' ')} of this account.")


def allowed(role: ProjectRole | None, action: Action) -> bool:
    return role is not None and role.role >= MINIMUM_ROLE[action]


def require(user: User, project: Project, action: Action) -> ProjectRole:
    """The user's role, if it allows `action`; otherwise 403 `permission_denied`."""
    role = project_role(user, project)
    if not allowed(role, action):
        raise PermissionDenied(f"You are not allowed to {action.replace('_', ' ')} here.")
    return role
