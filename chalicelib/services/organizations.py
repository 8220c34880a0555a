"""Organizations and their members (docs/api.md, "Endpoints" and "Roles").

An organization is a `users` item (ORGANIZATION) with one owner; the owner and each member have a
`memberships` item (the owner's with role `owner`, never listed as a member). Adding a member
counts it on the organization item in the same transaction, against the plan's limit. Removing
a member also removes their team memberships and their collaborations on the organization's
projects; the membership goes last, so a removal cut off midway can simply be asked again, and
the role resolution ignores an organization project's collaborator rows without a membership,
so access ends with the request either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.errors import (
    ObjectAlreadyExists,
    ObjectNotFound,
    ReachedMaxOrganizationMembers,
    ValidationError,
)
from chalicelib.models import Collaborator, Membership, Project, Team, User
from chalicelib.models.base import Transaction, get_many, transaction, utcnow
from chalicelib.models.listing import Listing
from chalicelib.models.organizations import MemberRole
from chalicelib.models.users import ORGANIZATION
from chalicelib.rules import plans
from chalicelib.rules.permissions import AccountAction, memberships_of, require_on_account
from chalicelib.services.accounts import find_person, find_user, new_account, user_key
from chalicelib.services.auth import Caller
from chalicelib.services.inputs import MemberAdd, MemberChange, OrganizationCreate


@dataclass(frozen=True)
class OrganizationView:
    """An organization as one caller sees it (QFieldCloud's OrganizationSerializer)."""

    organization: User
    public_members: list[str]
    teams: list[str]
    caller_membership: Membership | None


def find_organization(name: str) -> User | None:
    account = find_user(name)
    return account if account is not None and account.is_organization else None


def get_organization(name: str) -> User:
    organization = find_organization(name)
    if organization is None:
        raise ObjectNotFound(f"There is no organization `{name}`.")
    return organization


def create_organization(owner: User, name: str, email: str = "") -> OrganizationView:
    """A new organization owned by the person `owner`; 409 `object_already_exists` if the name
    is taken by any account."""
    if not owner.is_person:
        raise ValidationError("Only a person can own an organization.")
    organization = new_account(name, ORGANIZATION, email=email, organization_owner=owner.username,
                               members_count=0)
    ownership = Membership(organization.username_key, owner.username_key,
                           organization=organization.username, member=owner.username,
                           role=MemberRole.OWNER)
    with transaction({"name": ObjectAlreadyExists(f"The name `{name}` is taken.")}) as tx:
        tx.save(organization, condition=User.username_key.does_not_exist(), label="name")
        tx.save(ownership, condition=Membership.member_key.does_not_exist())
    return OrganizationView(organization, [], [], ownership)


def create_organization_as(caller: Caller, data: OrganizationCreate) -> OrganizationView:
    """POST organizations/: the caller becomes the owner."""
    require_on_account(caller.user, user_key(data.username), AccountAction.CREATE_ORGANIZATION)
    return create_organization(caller.user, data.username, data.email)


def _organization_for(caller: Caller, name: str, action: AccountAction) -> User:
    """The organization (404 unless there is one) if the caller may perform `action` on it."""
    organization = get_organization(name)
    require_on_account(caller.user, organization.username_key, action)
    return organization


def _listed(memberships: Iterable[Membership]) -> list[Membership]:
    return [m for m in memberships if m.role != MemberRole.OWNER]


def list_members(caller: Caller, name: str) -> Listing[Membership]:
    """The members in key order, a page at a time; `members_count` (kept with each change) is
    their number, the owner's row not counted, as it is not listed."""
    organization = _organization_for(caller, name, AccountAction.READ_MEMBERS)
    return Listing(Membership, organization.username_key, total=int(organization.members_count or 0),
                   filter=Membership.role != MemberRole.OWNER, filtered_out_at_most=1)


def _membership(organization: User, username: str) -> Membership:
    try:
        membership = Membership.get(organization.username_key, user_key(username), consistent_read=True)
    except DoesNotExist:
        membership = None
    if membership is None or membership.role == MemberRole.OWNER:
        raise ObjectNotFound(f"`{username}` is not a member of `{organization.username}`.")
    return membership


def get_member(caller: Caller, name: str, username: str) -> Membership:
    return _membership(_organization_for(caller, name, AccountAction.READ_MEMBERS), username)


def add_member(caller: Caller, name: str, data: MemberAdd) -> Membership:
    organization = _organization_for(caller, name, AccountAction.MANAGE_MEMBERS)
    person = find_person(data.member)
    if person is None:
        raise ObjectNotFound(f"There is no user `{data.member}`.")
    if person.username_key == user_key(organization.organization_owner or ""):
        raise ValidationError("The organization's owner cannot be added as a member.")
    now = utcnow()
    membership = Membership(organization.username_key, person.username_key,
                            organization=organization.username, member=person.username,
                            role=data.role, is_public=data.is_public, created_at=now, updated_at=now)
    errors = {"member": ValidationError(f"`{person.username}` is already a member."),
              "limit": ReachedMaxOrganizationMembers()}
    with transaction(errors) as tx:
        tx.save(membership, condition=Membership.member_key.does_not_exist(), label="member")
        tx.update(organization, actions=[User.members_count.add(1)],
                  condition=plans.member_limit_condition(organization), label="limit")
    return membership


def update_member(caller: Caller, name: str, username: str, data: MemberChange) -> Membership:
    organization = _organization_for(caller, name, AccountAction.MANAGE_MEMBERS)
    membership = _membership(organization, username)
    actions = [Membership.updated_at.set(utcnow())]
    if data.role is not None:
        actions.append(Membership.role.set(data.role))
    if data.is_public is not None:
        actions.append(Membership.is_public.set(data.is_public))
    try:
        membership.update(actions=actions, condition=Membership.role != MemberRole.OWNER)
    except UpdateError:
        raise ObjectNotFound(f"`{username}` is not a member of `{organization.username}`.") from None
    return membership


def _remove_collaborations(organization: User, member_key: str) -> None:
    """The member's collaborator rows on the organization's projects (the member's own
    collaborations, read from the index, then their projects in one batch)."""
    rows = list(Collaborator.by_collaborator.query(member_key))
    projects = get_many((Project, row.project_id) for row in rows)
    for row in rows:
        project = projects.get(Project, row.project_id)
        if project is None or project.owner_key != organization.username_key:
            continue
        with contextlib.suppress(TransactWriteError), Transaction() as tx:
            tx.delete(row, condition=Collaborator.collaborator_key.exists())
            tx.update(project, actions=[Project.person_collaborators.add(-1)],
                      condition=Project.id.exists())


def _leave_teams(membership: Membership) -> None:
    for team_id in membership.team_ids or ():
        with contextlib.suppress(UpdateError):
            Team(membership.organization_key, team_id).update(
                actions=[Team.members.delete({membership.member})], condition=Team.team_id.exists())


def remove_member(caller: Caller, name: str, username: str) -> None:
    organization = _organization_for(caller, name, AccountAction.MANAGE_MEMBERS)
    membership = _membership(organization, username)
    _remove_collaborations(organization, membership.member_key)
    _leave_teams(membership)
    with contextlib.suppress(TransactWriteError), Transaction() as tx:
        tx.delete(membership, condition=Membership.role != MemberRole.OWNER)
        tx.update(organization, actions=[User.members_count.add(-1)])


def organization_view(organization: User, caller_membership: Membership | None) -> OrganizationView:
    memberships = Membership.query(organization.username_key)
    public = sorted((m.member for m in _listed(memberships) if m.is_public), key=str.casefold)
    teams = sorted((team.name for team in Team.query(organization.username_key)), key=str.casefold)
    return OrganizationView(organization, public, teams, caller_membership)


def organizations_of(caller: Caller, username: str) -> list[OrganizationView]:
    """GET users/<u>/organizations/ (the caller's own only)."""
    require_on_account(caller.user, user_key(username), AccountAction.LIST_ORGANIZATIONS)
    memberships, organizations = memberships_of(caller.key)
    return [organization_view(organizations[key], memberships[key])
            for key in sorted(organizations)]
