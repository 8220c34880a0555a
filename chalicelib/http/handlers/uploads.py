from chalice import Response

from chalicelib.errors import InvalidRequest
from chalicelib.http import outputs as out
from chalicelib.http.handlers.files import UPLOAD_ERRORS
from chalicelib.http.request_data import body
from chalicelib.http.routing import Doc, Router
from chalicelib.http.serializers import upload_state_json, uploaded_json
from chalicelib.rules.permissions import Action
from chalicelib.services import projects, uploads
from chalicelib.services.inputs import UploadBegin, UploadCompletion

router = Router(__name__)


def _project(caller, project_id):
    """The project and the caller's role: reporters may upload attachments, so that is the least
    a caller needs to go on."""
    return projects.project_for(caller, project_id, Action.UPLOAD_ATTACHMENT)


@router.route("/uploads/{project_id}/", methods=["POST"], doc=Doc(
    "Begin a presigned upload: the URLs to PUT its parts to", returns=out.UploadStateOut, status=201,
    body=UploadBegin, errors=UPLOAD_ERRORS))
def begin_upload(caller, project_id):
    project, role = _project(caller, project_id)
    session = uploads.begin(caller, project, role, body(router.request, UploadBegin))
    return Response(body=upload_state_json(uploads.state(session)), status_code=201)


@router.route("/uploads/{project_id}/{upload_id}/", methods=["GET"], doc=Doc(
    "An upload's parts: those S3 holds, fresh URLs for the others", returns=out.UploadStateOut))
def upload_status(caller, project_id, upload_id):
    project, _ = _project(caller, project_id)
    return upload_state_json(uploads.state(uploads.get_session(caller, project, upload_id)))


@router.route("/uploads/{project_id}/{upload_id}/complete/", methods=["POST"], doc=Doc(
    "Complete an upload: the file's new version", returns=out.UploadedOut, status=201,
    body=UploadCompletion, errors=(*UPLOAD_ERRORS, InvalidRequest)))
def complete_upload(caller, project_id, upload_id):
    project, role = _project(caller, project_id)
    completion = body(router.request, UploadCompletion)
    session = uploads.get_session(caller, project, upload_id)
    version = uploads.complete(caller, project, role, session, completion.sha256)
    return Response(body=uploaded_json(session.name, version), status_code=201)


@router.route("/uploads/{project_id}/{upload_id}/", methods=["DELETE"],
              doc=Doc("Abandon an upload", status=204))
def abort_upload(caller, project_id, upload_id):
    project, _ = _project(caller, project_id)
    uploads.abort(uploads.get_session(caller, project, upload_id))
    return Response(body="", status_code=204)
