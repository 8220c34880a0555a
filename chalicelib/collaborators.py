"""A project's collaborators: people with a role on it (reference §2.8)."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from .accounts import find_user, user_key
from .auth import Caller
from .errors import ObjectNotFound, ValidationError
from .inputs import CollaboratorAdd, CollaboratorChange
from .models import Collaborator, Project
from .models.base import Transaction, utcnow
from .models.listing import Listing
from .models.projects import is_live
from .models.users import PERSON


def list_collaborators(project: Project) -> Listing[Collaborator]:
    """By collaborator key. No counter is kept: a project's collaborators are counted when a page
    of them is asked for (one COUNT Query per MB of them, i.e. for thousands)."""
    return Listing(Collaborator, project.id, total=None)


def get_collaborator(project: Project, username: str) -> Collaborator:
    try:
        return Collaborator.get(project.id, user_key(username))
    except DoesNotExist:
        raise ObjectNotFound(f"`{username}` is not a collaborator of this project.") from None


def add_collaborator(caller: Caller, project: Project, data: CollaboratorAdd) -> Collaborator:
    username, role = data.collaborator, data.role
    user = find_user(username)
    if user is None or user.account_type != PERSON or not user.is_active:
        raise ValidationError(f"There is no user `{username}`.")
    if user.username_key == project.owner_key:
        raise ValidationError("The project owner cannot be a collaborator.")
    now = utcnow()
    collaborator = Collaborator(
        project.id,
        user.username_key,
        collaborator=user.username,
        role=role.label,
        created_by=caller.username,
        updated_by=caller.username,
        created_at=now,
        updated_at=now,
    )
    tx = Transaction()
    try:
        with tx:  # never a collaborator of a project being deleted (project_deletion)
            tx.check(Project, project.id, condition=is_live(), label="project")
            tx.save(collaborator, condition=Collaborator.project_id.does_not_exist(), label="collaborator")
    except TransactWriteError as error:
        failed = tx.failed(error)
        if "project" in failed:
            raise ObjectNotFound(f"There is no project `{project.id}`.") from None
        if "collaborator" in failed:
            raise ValidationError(f"`{user.username}` is already a collaborator.") from None
        raise
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
    collaborator.delete()
