from datetime import timedelta

from chalice import Response

from chalicelib.config import settings
from chalicelib.errors import (
    Conflict,
    EmptyContent,
    MultipleContents,
    ObjectNotFound,
    ProjectAlreadyExists,
    QgisProjectFileNotAllowed,
)
from chalicelib.http import outputs as out
from chalicelib.http.pagination import paginate
from chalicelib.http.request_data import body, multipart, query
from chalicelib.http.routing import Doc, Router
from chalicelib.http.serializers import link_json, project_json
from chalicelib.models.base import utcnow
from chalicelib.rules.permissions import Action
from chalicelib.services import project_deletion, projects, thumbnails
from chalicelib.services.inputs import (
    OrderingQuery,
    ProjectCreate,
    ProjectListQuery,
    ProjectReplace,
    ProjectUpdate,
)

router = Router(__name__)


def _renderer():
    """Renders a list's projects batch by batch, reading each owner once per list."""
    owners: dict = {}
    return lambda items: [project_json(view) for view in projects.views(items, owners)]


@router.route("/projects/", methods=["GET"], doc=Doc(
    "The projects the caller has a role on", returns=list[out.ProjectOut], query=ProjectListQuery,
    paginated=True))
def list_projects(caller):
    request = router.request
    items = projects.list_projects(caller, query(request, ProjectListQuery))
    return paginate(request, items, _renderer())


@router.route("/projects/", methods=["POST"], doc=Doc(
    "Create a project", returns=out.ProjectOut, status=201, body=ProjectCreate,
    errors=(ProjectAlreadyExists, ObjectNotFound, Conflict)))
def create_project(caller):
    request = router.request
    project = projects.create_project(caller, body(request, ProjectCreate))
    return Response(body=project_json(projects.view(caller, project)), status_code=201)


@router.route("/projects/public/", doc=Doc("Every public project", returns=list[out.ProjectOut],
                                           query=OrderingQuery, paginated=True))
def list_public_projects(caller):
    request = router.request
    items = projects.list_public_projects(caller, query(request, OrderingQuery).ordering)
    return paginate(request, items, _renderer())


@router.route("/projects/{project_id}/", methods=["GET"], doc=Doc("A project", returns=out.ProjectOut))
def get_project(caller, project_id):
    project, role = projects.project_for(caller, project_id, Action.READ_PROJECT)
    return project_json(projects.views([(project, role)])[0])


@router.route("/projects/{project_id}/", methods=["PUT", "PATCH"], doc={
    method: Doc("Change a project (rename, settings, owner transfer)", returns=out.ProjectOut, body=model,
                errors=(ProjectAlreadyExists, QgisProjectFileNotAllowed, Conflict))
    for method, model in (("PUT", ProjectReplace), ("PATCH", ProjectUpdate))})
def update_project(caller, project_id):
    request = router.request
    project, _ = projects.project_for(caller, project_id, Action.UPDATE_PROJECT)
    changes = body(request, ProjectReplace if request.method == "PUT" else ProjectUpdate)
    project = projects.update_project(caller, project, changes)
    return project_json(projects.view(caller, project))


@router.route("/projects/{project_id}/", methods=["DELETE"],
              doc=Doc("Delete a project (its data goes in the background)", status=204))
def delete_project(caller, project_id):
    project, _ = projects.project_for(caller, project_id, Action.DELETE_PROJECT)
    project_deletion.request_deletion(project)
    return Response(body="", status_code=204)


@router.route("/projects/{project_id}/thumbnail/", methods=["POST"], doc=Doc(
    "Set the project's thumbnail (PNG or JPEG)", status=204, parts={"thumbnail": None},
    errors=(EmptyContent, MultipleContents)))
def upload_thumbnail(caller, project_id):
    request = router.request
    project, _ = projects.project_for(caller, project_id, Action.UPLOAD_THUMBNAIL)
    image = multipart(request).single("thumbnail")
    thumbnails.store(project, image.stream, image.size)
    return Response(body="", status_code=204)


@router.route("/files/thumbnails/{project_id}/", doc=Doc("Redirect to the project's thumbnail", status=302))
def download_thumbnail(caller, project_id):
    project, _ = projects.project_for(caller, project_id, Action.READ_FILES)
    return Response(body="", status_code=302, headers={"Location": thumbnails.url(project)})


@router.route("/files/thumbnails/{project_id}/link/", doc=Doc(
    "A link to the project's thumbnail (for an image a browser shows)", returns=out.LinkOut))
def thumbnail_link(caller, project_id):
    project, _ = projects.project_for(caller, project_id, Action.READ_FILES)
    return link_json(thumbnails.url(project), utcnow() + timedelta(seconds=settings.presigned_url_seconds))
