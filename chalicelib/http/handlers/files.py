from datetime import timedelta
from urllib.parse import quote

from chalice import Response

from chalicelib.config import settings
from chalicelib.errors import (
    Conflict,
    EmptyContent,
    ExplicitDeletionOfLastVersion,
    InvalidQgisProjectFile,
    MultipleContents,
    MultipleProjects,
    OverQuota,
    QgisProjectFileNotAllowed,
    RestrictedProjectModification,
)
from chalicelib.http import outputs as out
from chalicelib.http.handlers.downloads import download_doc, download_request, download_response
from chalicelib.http.pagination import paginate
from chalicelib.http.request_data import body, multipart, query
from chalicelib.http.routing import API_PREFIX, Doc, Router
from chalicelib.http.serializers import file_entries_json, file_metadata_json, link_json, uploaded_json
from chalicelib.models.base import utcnow
from chalicelib.rules.permissions import Action
from chalicelib.services import files, projects
from chalicelib.services.inputs import FileDownload, FileRestore, VersionQuery

router = Router(__name__)
# What an upload may be refused for, direct or presigned (docs/api.md, "Direct upload").
UPLOAD_ERRORS = (EmptyContent, MultipleContents, RestrictedProjectModification, QgisProjectFileNotAllowed,
                 MultipleProjects, InvalidQgisProjectFile, OverQuota, Conflict)


@router.route("/files/{project_id}/", doc=Doc("The project's files, each with its versions",
                                             returns=list[out.FileOut], paginated=True))
def list_files(caller, project_id):
    project, _ = projects.project_for(caller, project_id, Action.READ_FILES)
    return paginate(router.request, files.listed_files(project), file_entries_json)


def _received(request) -> files.Received:
    """The body is read and its checksums begun before the caller is resolved, so that they are
    computed while the caller and the project are read (the router answers what is wrong with
    the body after what is wrong with the caller)."""
    return files.receive(multipart(request).single("file").stream)


@router.file_route("/files/{project_id}/", methods=["POST"], doc=Doc(
    "Upload a file (a new version of it if it exists)", returns=out.UploadedOut, status=201,
    parts={"file": None}, errors=UPLOAD_ERRORS,
    description="Larger files go up with the presigned flow (`uploads/`)."), early=_received)
def upload_file(caller, project_id, filename, early):
    # Reporters may upload attachments, so that is the least a caller needs to go on.
    project, role = projects.project_for(caller, project_id, Action.UPLOAD_ATTACHMENT)
    version = files.upload(caller, files.check_upload(project, role, filename), early.get())
    location = f"{API_PREFIX}/files/{project_id}/{quote(filename)}/"
    return Response(body=uploaded_json(filename, version), status_code=201,
                    headers={"Location": location})


@router.file_route("/files/{project_id}/", methods=["GET"], doc=download_doc("Download a file"))
def download_file(caller, project_id, filename):
    request = router.request
    project, _ = projects.project_for(caller, project_id, Action.READ_FILES)
    wanted = download_request(request)
    item = files.get_file(project, filename)
    served = files.serve(files.stored_version(item, files.find_version(item, wanted.version)), wanted)
    return download_response(served)


@router.file_route("/files/{project_id}/", methods=["DELETE"], doc=Doc(
    "Delete a file with all its versions, or one version", status=204, query=VersionQuery,
    headers={"x-file-version": "The version to delete (as `version_id`)"},
    errors=(ExplicitDeletionOfLastVersion, Conflict)))
def delete_file(caller, project_id, filename):
    request = router.request
    project, _ = projects.project_for(caller, project_id, Action.DELETE_FILE)
    files.delete(project, filename, download_request(request).version)
    return Response(body="", status_code=204)


@router.file_route("/files/restore/{project_id}/", methods=["POST"], doc=Doc(
    "Restore a version: a copy of it becomes the file's newest version (inside S3)",
    returns=out.UploadedOut, status=201, body=FileRestore, errors=UPLOAD_ERRORS))
def restore_file_version(caller, project_id, filename):
    request = router.request
    project, role = projects.project_for(caller, project_id, Action.UPLOAD_ATTACHMENT)
    wanted = body(request, FileRestore)
    version = files.restore(caller, files.check_upload(project, role, filename), wanted.version_id)
    return Response(body=uploaded_json(filename, version), status_code=201)


@router.file_route("/files/links/{project_id}/", doc=Doc(
    "A download link of a file (a browser cannot send the token when it follows a redirect)",
    returns=out.LinkOut, query=VersionQuery,
    description="The presigned URL the download redirects to, valid 10 minutes, needing no auth header."))
def file_link(caller, project_id, filename):
    project, _ = projects.project_for(caller, project_id, Action.READ_FILES)
    item = files.get_file(project, filename)
    version = files.find_version(item, query(router.request, VersionQuery).wanted)
    served = files.serve(files.stored_version(item, version), FileDownload())
    return link_json(served.url, utcnow() + timedelta(seconds=settings.presigned_url_seconds))


@router.file_route("/files/metadata/{project_id}/",
                   doc=Doc("A file's entry of the list, with its content type", returns=out.FileMetadataOut))
def file_metadata(caller, project_id, filename):
    project, _ = projects.project_for(caller, project_id, Action.READ_FILES)
    item = files.get_file(project, filename)
    return file_metadata_json(item, files.content_type_for(item.name))
