from chalice import Response

from .. import auth, projects, thumbnails
from ..pagination import paginate
from ..permissions import Action
from ..request_data import body_fields, parse_multipart, query_param, to_bool
from ..routing import Router

router = Router(__name__)


def _include_public(request) -> bool:
    underscore = query_param(request, "include_public")
    if underscore is not None:
        return to_bool(underscore, "include_public")
    # The SDK's legacy hyphenated form: only `1` includes public projects, as upstream.
    return query_param(request, "include-public") == "1"


@router.route("/projects/", methods=["GET"])
def list_projects():
    request = router.request
    caller = auth.require_caller(request)
    items = projects.list_projects(
        caller,
        include_public=_include_public(request),
        owner=query_param(request, "owner"),
        name=query_param(request, "name"),
        search=query_param(request, "search"),
        ordering=query_param(request, "ordering"),
    )
    return paginate(request, items, projects.describe)


@router.route("/projects/", methods=["POST"])
def create_project():
    request = router.request
    caller = auth.require_caller(request)
    project = projects.create_project(caller, body_fields(request))
    role = projects.role_of(caller, project)
    return Response(body=projects.describe([(project, role)])[0], status_code=201)


@router.route("/projects/public/")
def list_public_projects():
    request = router.request
    caller = auth.require_caller(request)
    items = projects.list_public_projects(caller, query_param(request, "ordering"))
    return paginate(request, items, projects.describe)


@router.route("/projects/{project_id}/", methods=["GET"])
def get_project(project_id):
    caller = auth.require_caller(router.request)
    project, role = projects.project_for(caller, project_id, Action.READ_PROJECT)
    return projects.describe([(project, role)])[0]


@router.route("/projects/{project_id}/", methods=["PUT", "PATCH"])
def update_project(project_id):
    request = router.request
    caller = auth.require_caller(request)
    project, _ = projects.project_for(caller, project_id, Action.UPDATE_PROJECT)
    data = body_fields(request)
    project = projects.update_project(caller, project, data, full=request.method == "PUT")
    return projects.describe([(project, projects.role_of(caller, project))])[0]


@router.route("/projects/{project_id}/", methods=["DELETE"])
def delete_project(project_id):
    caller = auth.require_caller(router.request)
    project, _ = projects.project_for(caller, project_id, Action.DELETE_PROJECT)
    projects.delete_project(project)
    return Response(body="", status_code=204)


@router.route("/projects/{project_id}/thumbnail/", methods=["POST"])
def upload_thumbnail(project_id):
    request = router.request
    caller = auth.require_caller(request)
    project, _ = projects.project_for(caller, project_id, Action.UPLOAD_THUMBNAIL)
    thumbnails.store(project, parse_multipart(request).parts_named("thumbnail"))
    return Response(body="", status_code=204)


@router.route("/files/thumbnails/{project_id}/")
def download_thumbnail(project_id):
    caller = auth.require_caller(router.request)
    project, _ = projects.project_for(caller, project_id, Action.READ_FILES)
    return Response(body="", status_code=302, headers={"Location": thumbnails.url(project)})
