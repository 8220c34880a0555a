from urllib.parse import quote

from chalice import Response

from .. import auth, files, projects
from ..inputs import FileDownload
from ..pagination import paginate
from ..permissions import Action
from ..request_data import multipart, query_param
from ..routing import API_PREFIX, Router
from ..serializers import file_json, file_metadata_json, uploaded_json

router = Router(__name__)


def _download_request(request) -> FileDownload:
    headers = request.headers
    return FileDownload(
        version=query_param(request, "version", "version_id") or headers.get("x-file-version"),
        range=headers.get("range"),
        if_none_match=headers.get("if-none-match"),
        user_agent=headers.get("user-agent", ""),
    )


@router.route("/files/{project_id}/")
def list_files(project_id):
    caller = auth.require_caller(router.request)
    project, _ = projects.project_for(caller, project_id, Action.READ_FILES)
    return paginate(router.request, files.list_files(project), lambda page: [file_json(f) for f in page])


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
    wanted = _download_request(request)
    item = files.get_file(project, filename)
    version = files.find_version(item, wanted.version)
    etag = f'"{version.md5sum}"'
    if files.is_not_modified(version, wanted.if_none_match):
        return Response(body="", status_code=304, headers={"ETag": etag})
    target = files.download(item, version, wanted)
    return Response(body="", status_code=302,
                    headers={"Location": target.url, "ETag": etag, "Accept-Ranges": "bytes"})


@router.file_route("/files/{project_id}/", methods=["DELETE"])
def delete_file(project_id, filename):
    request = router.request
    caller = auth.require_caller(request)
    project, _ = projects.project_for(caller, project_id, Action.DELETE_FILE)
    files.delete(project, filename, _download_request(request).version)
    return Response(body="", status_code=204)


@router.file_route("/files/metadata/{project_id}/")
def file_metadata(project_id, filename):
    caller = auth.require_caller(router.request)
    project, _ = projects.project_for(caller, project_id, Action.READ_FILES)
    item = files.get_file(project, filename)
    return file_metadata_json(item, files.content_type_for(item.name))
