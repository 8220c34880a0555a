from chalice import Response

from chalicelib.errors import (
    DeltasNotStored,
    EmptyContent,
    InvalidDeltafile,
    MultipleContents,
    NoQgisProject,
    TooManyJobs,
)
from chalicelib.http import outputs as out
from chalicelib.http.pagination import paginate
from chalicelib.http.request_data import deltafile, query
from chalicelib.http.routing import Doc, Router
from chalicelib.http.serializers import delta_entries_json
from chalicelib.rules.permissions import Action
from chalicelib.services import deltas, projects
from chalicelib.services.inputs import Deltafile, OrderingQuery

router = Router(__name__)


@router.route("/deltas/{project_id}/", methods=["GET"], doc=Doc(
    "The project's deltas, in upload order", returns=list[out.DeltaOut], query=OrderingQuery, paginated=True))
def list_deltas(caller, project_id):
    request = router.request
    project, _ = projects.project_for(caller, project_id, Action.READ_DELTAS)
    listing = deltas.list_deltas(project, query(request, OrderingQuery).ordering)
    return paginate(request, listing, delta_entries_json)


@router.route("/deltas/{project_id}/", methods=["POST"], doc=Doc(
    "Upload a deltafile; a `delta_apply` job applies it", parts={"file": Deltafile},
    errors=(InvalidDeltafile, NoQgisProject, EmptyContent, MultipleContents, DeltasNotStored)))
def upload_deltafile(caller, project_id):
    request = router.request
    project, role = projects.project_for(caller, project_id, Action.UPLOAD_DELTAS)
    deltas.upload(caller, project, role, deltafile(request))
    return Response(body="", status_code=200)


@router.route("/deltas/{project_id}/{deltafile_id}/", methods=["GET"], doc=Doc(
    "The deltas of one deltafile", returns=list[out.DeltaOut], paginated=True))
def list_deltafile(caller, project_id, deltafile_id):
    request = router.request
    project, _ = projects.project_for(caller, project_id, Action.READ_DELTAS)
    return paginate(request, deltas.list_deltafile(project, deltafile_id), delta_entries_json)


@router.route("/deltas/apply/{project_id}/", methods=["POST"], doc=Doc(
    "Apply what is pending (deprecated: POST jobs/)", errors=(NoQgisProject, TooManyJobs)))
def apply_deltas(caller, project_id):
    project, _ = projects.project_for(caller, project_id, Action.UPLOAD_DELTAS)
    deltas.apply(caller, project)
    return Response(body="", status_code=200)
