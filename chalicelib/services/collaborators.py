"""A project's collaborators: people and teams with a role on it (docs/api.md, "Roles").

On an organization's project a person must belong to the organization (its owner included) and a
team must be one of its teams. The project counts its person collaborators (`person_collaborators`,
in the same transaction as each row) for its owner's plan limit (`plans.py`).
"""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.errors import Conflict, ObjectNotFound, ValidationError
from chalicelib.models import Collaborator, Membership, Project, User
from chalicelib.models.base import TRANSACTION_LIMIT, Transaction, transaction, utcnow
from chalicelib.models.collaborators import team_collaborator_key
from chalicelib.models.listing import Listing
from chalicelib.models.projects import has_list_order, is_live
from chalicelib.services.accounts import find_user, user_key
from chalicelib.services.auth import Caller
from chalicelib.services.inputs import CollaboratorAdd, CollaboratorChange

ORDER_ATTEMPTS = 3


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
    """The row carries the project's `list_order` (`project_order`, what `GET projects/` pages
    by); the transaction checks the project still has it, so after a rename committed meanwhile
    (whose rewrite of the rows may have missed this one) the project is read again."""
    account = _collaborating_account(project, data.collaborator)
    project_id = project.id
    for _ in range(ORDER_ATTEMPTS):
        try:
            return _add_collaborator(caller, project, account, data)
        except _ProjectChanged:
            try:
                project = Project.get(project.id, consistent_read=True)
            except DoesNotExist:
                project = None
            if project is None or project.deleting_since is not None:  # never on a deleted one
                raise ObjectNotFound(f"There is no project `{project_id}`.") from None
    raise Conflict("The project was renamed meanwhile; retry.")


class _ProjectChanged(Exception):
    """The project is gone, being deleted, or has another `list_order` than the one read."""


def _add_collaborator(caller: Caller, project: Project, account: User,
                      data: CollaboratorAdd) -> Collaborator:
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
        project_order=project.list_order,
    )
    errors = {
        "project": _ProjectChanged(),
        "row": ValidationError(f"`{account.username}` is already a collaborator."),
        "member": ValidationError(
            f"`{account.username}` is not a member of `{project.owner}`, which owns the project."),
    }
    unchanged = is_live() & has_list_order(project.list_order)
    with transaction(errors) as tx:
        tx.save(collaborator, condition=Collaborator.collaborator_key.does_not_exist(), label="row")
        if account.is_person:
            tx.update(project, actions=[Project.person_collaborators.add(1)], condition=unchanged,
                      label="project")
            if project.owner_is_organization:
                tx.check(Membership, project.owner_key, account.username_key,
                         condition=Membership.member_key.exists(), label="member")
        else:
            tx.check(Project, project.id, condition=unchanged, label="project")
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


def follow_project_order(project: Project) -> None:
    """Give the project's rows its new `list_order` (after a rename, a transfer, a change of
    `is_featured`), read consistently after that change committed. Each transaction also checks
    that the project still has this order: when two renames race, the earlier one's rewrite
    fails rather than leaving the rows with an outdated order, and the later one's wins. A row
    removed meanwhile only means the rows are read again. Rows left behind by a process that
    stopped in between are skipped by the list until `reorder_all` (admin `reorder`) fixes them
    (see project_list)."""
    order = project.list_order
    for _ in range(ORDER_ATTEMPTS):
        rows = [row for row in Collaborator.query(project.id, consistent_read=True)
                if row.project_order != order]
        batch = TRANSACTION_LIMIT - 1  # and the project's check
        tx = Transaction()
        try:
            for start in range(0, len(rows), batch):
                tx = Transaction()
                with tx:
                    tx.check(Project, project.id, condition=has_list_order(order), label="project")
                    for row in rows[start:start + batch]:
                        tx.update(row, actions=[Collaborator.project_order.set(order)],
                                  condition=Collaborator.collaborator_key.exists())
            return
        except TransactWriteError as exc:
            if "project" in tx.failed(exc):
                return  # a later change of the order rewrites the rows
