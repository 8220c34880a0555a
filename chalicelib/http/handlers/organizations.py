from chalice import Response

from chalicelib.errors import InvalidRequest, ObjectAlreadyExists
from chalicelib.http import outputs as out
from chalicelib.http.request_data import body
from chalicelib.http.routing import Doc, Router
from chalicelib.http.serializers import organization_json, team_json, team_member_json
from chalicelib.services import organizations, teams
from chalicelib.services.inputs import OrganizationCreate, TeamInput, TeamMemberAdd

router = Router(__name__)
TEAM = "/organizations/{organization}/teams/{team}/"


@router.route("/organizations/", methods=["POST"], doc=Doc(
    "Create an organization owned by the caller", returns=out.OrganizationOut, status=201,
    body=OrganizationCreate, errors=(ObjectAlreadyExists,)))
def create_organization(caller):
    request = router.request
    view = organizations.create_organization_as(caller, body(request, OrganizationCreate))
    return Response(body=organization_json(view), status_code=201)


@router.route("/organizations/{organization}/teams/", methods=["GET"],
              doc=Doc("An organization's teams", returns=list[out.TeamOut]))
def list_teams(caller, organization):
    return [team_json(view) for view in teams.list_teams(caller, organization)]


@router.route("/organizations/{organization}/teams/", methods=["POST"], doc=Doc(
    "Create a team", returns=out.TeamOut, status=201, body=TeamInput, errors=(InvalidRequest,)))
def create_team(caller, organization):
    request = router.request
    view = teams.create_team(caller, organization, body(request, TeamInput))
    return Response(body=team_json(view), status_code=201)


@router.route(TEAM, methods=["GET"], doc=Doc("A team", returns=out.TeamOut))
def get_team(caller, organization, team):
    return team_json(teams.get_team(caller, organization, team))


@router.route(TEAM, methods=["PUT"], doc=Doc("Rename a team", returns=out.TeamOut, body=TeamInput,
                                             errors=(InvalidRequest,)))
def rename_team(caller, organization, team):
    request = router.request
    return team_json(teams.rename_team(caller, organization, team, body(request, TeamInput)))


@router.route(TEAM, methods=["PATCH"], doc=Doc(
    "Refused to everyone, as upstream: rename with PUT", status=403, returns=out.ErrorOut))
def patch_team(caller, organization, team):
    teams.refuse_team_patch(caller, organization, team)


@router.route(TEAM, methods=["DELETE"], doc=Doc("Delete a team (with its collaborations)", status=204))
def delete_team(caller, organization, team):
    teams.delete_team(caller, organization, team)
    return Response(body="", status_code=204)


@router.route(TEAM + "members/", methods=["GET"],
              doc=Doc("A team's members", returns=list[out.TeamMemberOut]))
def list_team_members(caller, organization, team):
    return [team_member_json(name) for name in teams.list_team_members(caller, organization, team)]


@router.route(TEAM + "members/", methods=["POST"], doc=Doc(
    "Add a member of the organization to a team", returns=out.TeamMemberOut, status=201, body=TeamMemberAdd,
    errors=(InvalidRequest,)))
def add_team_member(caller, organization, team):
    request = router.request
    username = teams.add_team_member(caller, organization, team, body(request, TeamMemberAdd))
    return Response(body=team_member_json(username), status_code=201)


@router.route(TEAM + "members/{member}/", methods=["DELETE"],
              doc=Doc("Take a member out of a team", status=204))
def remove_team_member(caller, organization, team, member):
    teams.remove_team_member(caller, organization, team, member)
    return Response(body="", status_code=204)
