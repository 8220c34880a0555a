"""Teams of an organization and their members (docs/api.md, "Endpoints").

A team is a `teams` item with a fixed id and a name claim in `users` (`@<org>/<team>`, TEAM), so
names are unique per organization (case-insensitively) and a rename touches the claim and the
team only: memberships (`team_ids`) and the team's collaborator rows refer to the id. A team's
members are a set on the team, kept in the same transaction as each member's `team_ids`; only the
organization's owner and members can join. A duplicate name is 400 `api_error` (QFieldCloud
fails with a 500 on create and answers 400 on rename).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.errors import InvalidRequest, ObjectNotFound, ValidationError
from chalicelib.models import Collaborator, Membership, Team, User
from chalicelib.models.base import TRANSACTION_LIMIT, Transaction, transaction
from chalicelib.models.collaborators import team_collaborator_key
from chalicelib.models.users import TEAM
from chalicelib.rules.permissions import AccountAction, require_on_account
from chalicelib.services.accounts import find_person, find_user, user_key
from chalicelib.services.auth import Caller
from chalicelib.services.inputs import TeamInput, TeamMemberAdd
from chalicelib.services.organizations import get_organization


@dataclass(frozen=True)
class TeamView:
    organization: User
    team: Team

    @property
    def username(self) -> str:
        return team_username(self.organization, self.team.name)


def team_username(organization: User, name: str) -> str:
    """A team's username, `@<organization>/<team>` (what collaborator lists show)."""
    return f"@{organization.username}/{name}"


def find_team(claim: User) -> Team | None:
    """The team a TEAM name claim names."""
    try:
        return Team.get(claim.organization_key, claim.team_id, consistent_read=True)
    except DoesNotExist:
        return None


def _organization_for(caller: Caller, name: str, action: AccountAction) -> User:
    organization = get_organization(name)
    require_on_account(caller.user, organization.username_key, action)
    return organization


def _team(organization: User, name: str) -> Team:
    claim = find_user(team_username(organization, name))
    team = find_team(claim) if claim is not None and claim.is_team else None
    if team is None or team.organization_key != organization.username_key:
        raise ObjectNotFound(f"`{organization.username}` has no team `{name}`.")
    return team


def _claim(organization: User, team: Team) -> User:
    username = team_username(organization, team.name)
    return User(user_key(username), username=username, account_type=TEAM,
                organization_key=organization.username_key, team_id=team.team_id)


def list_teams(caller: Caller, name: str) -> list[TeamView]:
    organization = _organization_for(caller, name, AccountAction.READ_TEAMS)
    teams = Team.query(organization.username_key, consistent_read=True)
    return [TeamView(organization, team) for team in sorted(teams, key=lambda t: t.name.casefold())]


def get_team(caller: Caller, name: str, team_name: str) -> TeamView:
    organization = _organization_for(caller, name, AccountAction.READ_TEAMS)
    return TeamView(organization, _team(organization, team_name))


def _name_taken(name: str) -> InvalidRequest:
    return InvalidRequest(f"The organization already has a team named `{name}`.")


def create_team(caller: Caller, name: str, data: TeamInput) -> TeamView:
    organization = _organization_for(caller, name, AccountAction.MANAGE_TEAMS)
    team = Team(organization.username_key, str(uuid.uuid4()), name=data.team)
    with transaction({"name": _name_taken(data.team)}) as tx:
        tx.save(_claim(organization, team), condition=User.username_key.does_not_exist(), label="name")
        tx.save(team, condition=Team.team_id.does_not_exist())
    return TeamView(organization, team)


def _rename_collaborator_rows(view: TeamView) -> None:
    """Collaborator lists show the team's name: rewrite it on the team's rows."""
    rows = list(Collaborator.by_collaborator.query(team_collaborator_key(view.team.team_id)))
    for start in range(0, len(rows), TRANSACTION_LIMIT):
        with Transaction() as tx:
            for row in rows[start:start + TRANSACTION_LIMIT]:
                tx.update(row, actions=[Collaborator.collaborator.set(view.username)],
                          condition=Collaborator.collaborator_key.exists())


def rename_team(caller: Caller, name: str, team_name: str, data: TeamInput) -> TeamView:
    organization = _organization_for(caller, name, AccountAction.MANAGE_TEAMS)
    team = _team(organization, team_name)
    old_claim = _claim(organization, team)
    team.name = data.team
    new_claim = _claim(organization, team)
    with transaction({"name": _name_taken(data.team)}) as tx:
        if new_claim.username_key != old_claim.username_key:
            tx.delete(old_claim, condition=User.team_id == team.team_id)
            tx.save(new_claim, condition=User.username_key.does_not_exist(), label="name")
        else:
            tx.save(new_claim, condition=User.team_id == team.team_id)
        tx.update(team, actions=[Team.name.set(data.team)], condition=Team.team_id.exists())
    view = TeamView(organization, team)
    _rename_collaborator_rows(view)
    return view


def refuse_team_patch(caller: Caller, name: str, team_name: str) -> None:
    """PATCH is routed upstream but refused to everyone: teams are renamed with PUT."""
    organization = _organization_for(caller, name, AccountAction.PATCH_TEAM)
    _team(organization, team_name)


def delete_team(caller: Caller, name: str, team_name: str) -> None:
    """The team's collaborator rows first (its access ends), then its members' `team_ids`, then
    the team and its name: a deletion cut off midway leaves a team that can be deleted again."""
    organization = _organization_for(caller, name, AccountAction.MANAGE_TEAMS)
    team = _team(organization, team_name)
    with Collaborator.batch_write() as batch:
        for row in Collaborator.by_collaborator.query(team_collaborator_key(team.team_id)):
            batch.delete(row)
    for member in team.members or ():
        with contextlib.suppress(UpdateError):
            Membership(organization.username_key, user_key(member)).update(
                actions=[Membership.team_ids.delete({team.team_id})],
                condition=Membership.member_key.exists())
    with Transaction() as tx:
        tx.delete(_claim(organization, team), condition=User.team_id == team.team_id)
        tx.delete(team)


def list_team_members(caller: Caller, name: str, team_name: str) -> list[str]:
    organization = _organization_for(caller, name, AccountAction.READ_TEAMS)
    return _team(organization, team_name).member_names


def add_team_member(caller: Caller, name: str, team_name: str, data: TeamMemberAdd) -> str:
    """The person (by username or email) joins the team; they must belong to the organization
    (its owner counts)."""
    organization = _organization_for(caller, name, AccountAction.MANAGE_TEAMS)
    team = _team(organization, team_name)
    person = find_person(data.member)
    if person is None:
        raise InvalidRequest(f"There is no user `{data.member}`.")
    errors = {"team": InvalidRequest(f"`{person.username}` is already in the team."),
              "membership": ValidationError(
                  f"`{person.username}` is not a member of `{organization.username}`.")}
    with transaction(errors) as tx:
        tx.update(team, actions=[Team.members.add({person.username})],
                  condition=Team.team_id.exists() & ~Team.members.contains(person.username),
                  label="team")
        tx.update(Membership(organization.username_key, person.username_key),
                  actions=[Membership.team_ids.add({team.team_id})],
                  condition=Membership.member_key.exists(), label="membership")
    return person.username


def remove_team_member(caller: Caller, name: str, team_name: str, username: str) -> None:
    organization = _organization_for(caller, name, AccountAction.MANAGE_TEAMS)
    team = _team(organization, team_name)
    member = next((m for m in team.members or () if user_key(m) == user_key(username)), None)
    if member is None:
        raise ObjectNotFound(f"`{username}` is not in the team `{team.name}`.")
    with transaction({"team": ObjectNotFound(f"`{username}` is not in the team `{team.name}`.")}) as tx:
        tx.update(team, actions=[Team.members.delete({member})],
                  condition=Team.members.contains(member), label="team")
        tx.update(Membership(organization.username_key, user_key(member)),
                  actions=[Membership.team_ids.delete({team.team_id})],
                  condition=Membership.member_key.exists())
