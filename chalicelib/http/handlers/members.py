from chalice import Response

from chalicelib.errors import Conflict, InvalidRequest, ReachedMaxOrganizationMembers
from chalicelib.http import outputs as out
from chalicelib.http.pagination import paginate
from chalicelib.http.request_data import body
from chalicelib.http.routing import Doc, Router
from chalicelib.http.serializers import member_json
from chalicelib.services import organizations
from chalicelib.services.inputs import MemberAdd, MemberChange, MemberReplace

router = Router(__name__)


@router.route("/members/{organization}/", methods=["GET"], doc=Doc(
    "An organization's members (its owner not listed)", returns=list[out.MemberOut], paginated=True))
def list_members(caller, organization):
    request = router.request
    found = organizations.list_members(caller, organization)
    return paginate(request, found, lambda page: [member_json(m) for m in page])


@router.route("/members/{organization}/", methods=["POST"], doc=Doc(
    "Add a member", returns=out.MemberOut, status=201, body=MemberAdd,
    errors=(ReachedMaxOrganizationMembers, InvalidRequest, Conflict)))
def add_member(caller, organization):
    request = router.request
    membership = organizations.add_member(caller, organization, body(request, MemberAdd))
    return Response(body=member_json(membership), status_code=201)


@router.route("/members/{organization}/{username}/", methods=["GET"],
              doc=Doc("One member", returns=out.MemberOut))
def get_member(caller, organization, username):
    return member_json(organizations.get_member(caller, organization, username))


@router.route("/members/{organization}/{username}/", methods=["PUT", "PATCH"], doc={
    method: Doc("Change a member's role or visibility", returns=out.MemberOut, body=model)
    for method, model in (("PUT", MemberReplace), ("PATCH", MemberChange))})
def update_member(caller, organization, username):
    request = router.request
    change = body(request, MemberReplace if request.method == "PUT" else MemberChange)
    return member_json(organizations.update_member(caller, organization, username, change))


@router.route("/members/{organization}/{username}/", methods=["DELETE"], doc=Doc(
    "Remove a member (with their teams and collaborations in the organization)", status=204))
def remove_member(caller, organization, username):
    organizations.remove_member(caller, organization, username)
    return Response(body="", status_code=204)
