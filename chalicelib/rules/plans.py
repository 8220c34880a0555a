"""Plan limits: how many person collaborators a private project may have and how many members an
organization may have. One plan for everyone (the settings), which an account may override with
its own figures; -1 means no limit. Storage quotas are `quota.py`'s."""

from __future__ import annotations

from chalicelib.config import settings
from chalicelib.models import Project, User

UNLIMITED = -1


def _own_or_default(value: int | None, default: int) -> int:
    return default if value is None else int(value)


def max_collaborators(owner: User) -> int:
    """Person collaborators allowed on each private project of `owner`."""
    return _own_or_default(owner.max_premium_collaborators_per_private_project,
                           settings.max_premium_collaborators_per_private_project)


def max_members(organization: User) -> int:
    return _own_or_default(organization.max_organization_members, settings.max_organization_members)


def too_many_collaborators(project: Project, owner: User | None) -> bool:
    """A private project with more person collaborators than its owner's plan allows: it is
    `failed` (`too_many_collaborators`) and roles through collaborators are invalid."""
    if owner is None or project.is_public:
        return False
    limit = max_collaborators(owner)
    return limit != UNLIMITED and int(project.person_collaborators or 0) > limit


def member_limit_condition(organization: User):
    """The condition under which one more member fits the organization's plan (None: no limit)."""
    limit = max_members(organization)
    if limit == UNLIMITED:
        return None
    return User.members_count < limit
