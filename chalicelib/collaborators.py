"""A project's collaborators: people and teams with a role on it (reference §2.8).

On an organization's project a person must belong to the organization (its owner included) and a
team must be one of its teams. The project counts its person collaborators (`person_collaborators`,
in the same transaction as each row) for its owner's plan limit (`plans.py`).
"""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from .accounts import find_user, user_key
from .auth import Caller
from .errors import ObjectNotFound, ValidationError
from .inputs import CollaboratorAdd, CollaboratorChange
from .models import Collaborator, Membership, Project, User
from .models.base import transaction, utcnow
from .models.collaborators import team_collaborator_key
from .models.listing import Listing
from .models.projects import is_live


def list_collaborators(project: Project) -> Listing[Collaborator]:
    """By collaborator key. No counter is kept: a project's collaborators are counted when a page
    of them is asked for (one COUNT Query per MB of them, i.e. for thousands)."""
    return Listing(Collaborator, project.id, total=None)


def _row_key(project: Project, username: str) -> str | None:
    """The collaborator key of a person's or a team's (`@org/team`) row; None if no such team."""
    if not username.startswith("@"):
        return user_key(username)
    claim = find_user(username)
    if claim is None or not claim.is_team or claim.organization_key != project.owner_key:
        return None
    return team_collaborator_key(claim.team_id)


def get_collaborator(project: Project, username: str) -> Collaborator:
    key = _row_key(project, username)
    try:
        if key is None:
            raise DoesNotExist()
        return Collaborator.get(project.id, key, consistent_read=True)
    except DoesNotExist:
        raise ObjectNotFound(f"`{username}` is not a collaborator of this project.") from None


def _collaborating_account(project: Project, username: str) -> User:
    account = find_user(username)
    if account is None or not (account.is_person and account.is_active or account.is_team):
        raise ValidationError(f"There is no user `{username}`.")
    if account.username_key == project.owner_key:
        raise ValidationError("The project owner cannot be a collaborator.")
    if account.is_team and account.organization_key != project.owner_key:
        raise ValidationError("Only a team of the organization that owns the project can collaborate.")
    return account


def add_collaborator(caller: Caller, project: Project, data: CollaboratorAdd) -> Collaborator:
    account = _collaborating_account(project, data.collaborator)
    now = utcnow()
    key = team_collaborator_key(account.team_id) if account.is_team else account.username_key
    collaborator = Collaborator(
        project.id,
        key,
        collaborator=account.username,
        role=data.role.label,
        created_by=caller.username,
        updated_by=caller.username,
        created_at=now,
        updated_at=now,
    )
    errors = {
        # Never a collaborator of a project being deleted (project_deletion).
        "project": ObjectNotFound(f"There is no project `{project.id}`."),
        "row": ValidationError(f"`{account.username}` is already a collaborator."),
        "member": ValidationError(
            f"`{account.username}` is not a member of `{project.owner}`, which owns the project."),
    }
    with transaction(errors) as tx:
        tx.save(collaborator, condition=Collaborator.collaborator_key.does_not_exist(), label="row")
        if account.is_person:
            tx.update(project, actions=[Project.person_collaborators.add(1)], condition=is_live(),
                      label="project")
            if project.owner_is_organization:
                tx.check(Membership, project.owner_key, account.username_key,
                         condition=Membership.member_key.exists(), label="member")
        else:
            tx.check(Project, project.id, condition=is_live(), label="project")
    return collaborator


def update_collaborator(
    caller: Caller, collaborator: Collaborator, data: CollaboratorChange
) -> Collaborator:
    collaborator.update(
        actions=[
            Collaborator.role.set(data.role.label),
            Collaborator.updated_by.set(caller.username),
            Collaborator.updated_at.set(utcnow()),
        ],
        condition=Collaborator.collaborator_key.exists(),
    )
    return collaborator


def remove_collaborator(collaborator: Collaborator) -> None:
    gone = ObjectNotFound(f"`{collaborator.collaborator}` is not a collaborator anymore.")
    with transaction({"row": gone}) as tx:
        tx.delete(collaborator, condition=Collaborator.collaborator_key.exists(), label="row")
        if collaborator.team_id is None:
            tx.update(Project(collaborator.project_id),
                      actions=[Project.person_collaborators.add(-1)], condition=Project.id.exists())
