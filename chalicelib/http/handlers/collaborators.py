from chalice import Response

from chalicelib.errors import Conflict, InvalidRequest
from chalicelib.http import outputs as out
from chalicelib.http.pagination import paginate
from chalicelib.http.request_data import body
from chalicelib.http.routing import Doc, Router
from chalicelib.http.serializers import collaborator_json
from chalicelib.rules.permissions import Action
from chalicelib.services import collaborators, projects
from chalicelib.services.inputs import CollaboratorAdd, CollaboratorChange

router = Router(__name__)


def _project(caller, project_id):
    project, _ = projects.project_for(caller, project_id, Action.MANAGE_COLLABORATORS)
    return project


@router.route("/collaborators/{project_id}/", methods=["GET"],
              doc=Doc("The project's collaborators", returns=list[out.CollaboratorOut], paginated=True))
def list_collaborators(caller, project_id):
    project = _project(caller, project_id)
    items = collaborators.list_collaborators(project)
    return paginate(router.request, items, lambda page: [collaborator_json(c) for c in page])


@router.route("/collaborators/{project_id}/", methods=["POST"], doc=Doc(
    "Add a collaborator (a person, or a team as `@<org>/<team>`)", returns=out.CollaboratorOut,
    status=201, body=CollaboratorAdd, errors=(InvalidRequest, Conflict)))
def add_collaborator(caller, project_id):
    project = _project(caller, project_id)
    collaborator = collaborators.add_collaborator(caller, project, body(router.request, CollaboratorAdd))
    return Response(body=collaborator_json(collaborator), status_code=201)


@router.route("/collaborators/{project_id}/{username}/", methods=["GET"],
              doc=Doc("One collaborator", returns=out.CollaboratorOut))
def get_collaborator(caller, project_id, username):
    project = _project(caller, project_id)
    return collaborator_json(collaborators.get_collaborator(project, username))


@router.route("/collaborators/{project_id}/{username}/", methods=["PUT", "PATCH"],
              doc=Doc("Change a collaborator's role", returns=out.CollaboratorOut, body=CollaboratorChange))
def update_collaborator(caller, project_id, username):
    project = _project(caller, project_id)
    collaborator = collaborators.get_collaborator(project, username)
    change = body(router.request, CollaboratorChange)
    return collaborator_json(collaborators.update_collaborator(caller, collaborator, change))


@router.route("/collaborators/{project_id}/{username}/", methods=["DELETE"],
              doc=Doc("Remove a collaborator", status=204))
def remove_collaborator(caller, project_id, username):
    project = _project(caller, project_id)
    collaborators.remove_collaborator(collaborators.get_collaborator(project, username))
    return Response(body="", status_code=204)
