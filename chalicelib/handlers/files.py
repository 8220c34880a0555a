from urllib.parse import quote

from chalice import Response

from .. import auth, files, projects
from ..config import settings
from ..errors import EmptyContent, MultipleContents, PayloadTooLarge
from ..pagination import paginate
from ..permissions import Action
from ..request_data import media_type, parse_multipart, query_param
from ..routing import API_PREFIX, Router, parse_uuid
from ..serializers import file_json, uploaded_json

router = Router(__name__)


def _requested_version(request) -> str | None:
    value = query_param(request, "version", "version_id") or request.headers.get("x-file-version")
    return parse_uuid(value, "version id") if value else None


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
    limit = settings.max_direct_upload_bytes
    if limit is not None and len(request.raw_body or b"") > limit:
        raise PayloadTooLarge(
            f"Files above {limit} bytes cannot be sent in one request here; use the presigned "
            f"upload flow: POST {API_PREFIX}/uploads/{project_id}/ (see docs/api.md)."
        )
    multipart = media_type(request) == "multipart/form-data"
    parts = parse_multipart(request).parts_named("file") if multipart else []
    if not parts:
        raise EmptyContent("Send the file in a multipart part named `file`.")
    if len(parts) > 1:
        raise MultipleContents("Send exactly one multipart part named `file`.")
    target = files.check_upload(project, role, filename)
    version = files.upload(caller, target, parts[0])
    location = f"{API_PREFIX}/files/{project_id}/{quote(filename)}/"
    return Response(body=uploaded_json(filename, version), status_code=201,
                    headers={"Location": location})


@router.file_route("/files/{project_id}/", methods=["GET"])
def download_file(project_id, filename):
    request = router.request
    caller = auth.require_caller(request)
    project, _ = projects.project_for(caller, project_id, Action.READ_FILES)
    item = files.get_file(project, filename)
    version = files.find_version(item, _requested_version(request))
    etag = f'"{version.md5sum}"'
    if files.is_not_modified(version, request.headers.get("if-none-match")):
        return Response(body="", status_code=304, headers={"ETag": etag})
    target = files.download(
        item, version, request.headers.get("range"), request.headers.get("user-agent", "")
    )
    return Response(body="", status_code=302,
                    headers={"Location": target.url, "ETag": etag, "Accept-Ranges": "bytes"})


@router.file_route("/files/{project_id}/", methods=["DELETE"])
def delete_file(project_id, filename):
    request = router.request
    caller = auth.require_caller(request)
    project, _ = projects.project_for(caller, project_id, Action.DELETE_FILE)
    files.delete(project, filename, _requested_version(request))
    return Response(body="", status_code=204)


@router.file_route("/files/metadata/{project_id}/")
def file_metadata(project_id, filename):
    caller = auth.require_caller(router.request)
    project, _ = projects.project_for(caller, project_id, Action.READ_FILES)
    item = files.get_file(project, filename)
    return {**file_json(item), **files.metadata(item)}
