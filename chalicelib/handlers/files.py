from urllib.parse import quote

from chalice import Response

from .. import auth, files, projects
from ..pagination import paginate
from ..permissions import Action
from ..request_data import multipart
from ..routing import API_PREFIX, Router
from ..serializers import file_json, file_metadata_json, uploaded_json
from .downloads import download_request, download_response

router = Router(__name__)


@router.route("/files/{project_id}/")
def list_files(project_id):
    caller = auth.require_caller(router.request)
    project, _ = projects.project_for(caller, project_id, Action.READ_FILES)
    return paginate(router.request, files.listed_files(project), lambda page: [file_json(f) for f in page])


@router.file_route("/files/{project_id}/", methods=["POST"])
def upload_file(project_id, filename):
    request = router.request
    caller = auth.require_caller(request)
    # Reporters may upload attachments, so that is the least a caller needs to go on.
    project, role = projects.project_for(caller, project_id, Action.UPLOAD_ATTACHMENT)
    content = multipart(request).single("file")
    version = files.upload(caller, files.check_upload(project, role, filename), content.stream)
    location = f"{API_PREFIX}/files/{project_id}/{quote(filename)}/"
    return Response(body=uploaded_json(filename, version), status_code=201,
                    headers={"Location": location})


@router.file_route("/files/{project_id}/", methods=["GET"])
def download_file(project_id, filename):
    request = router.request
    caller = auth.require_caller(request)
    project, _ = projects.project_for(caller, project_id, Action.READ_FILES)
    wanted = download_request(request)
    item = files.get_file(project, filename)
    served = files.serve(files.stored_version(item, files.find_version(item, wanted.version)), wanted)
    return download_response(served)


@router.file_route("/files/{project_id}/", methods=["DELETE"])
def delete_file(project_id, filename):
    request = router.request
    caller = auth.require_caller(request)
    project, _ = projects.project_for(caller, project_id, Action.DELETE_FILE)
    files.delete(project, filename, download_request(request).version)
    return Response(body="", status_code=204)


@router.file_route("/files/metadata/{project_id}/")
def file_metadata(project_id, filename):
    caller = auth.require_caller(router.request)
    project, _ = projects.project_for(caller, project_id, Action.READ_FILES)
    item = files.get_file(project, filename)
    return file_metadata_json(item, files.content_type_for(item.name))
