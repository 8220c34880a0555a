"""Project files and their versions: listing, uploading, downloading, deleting.

The bytes of a version are an S3 version of `storage.file_key(project, name)`; the `ProjectFile`
item lists the kept versions. Every change of a file updates, in one transaction, the file item
(optimistically locked), the project's counters and the owner's storage total, and is retried
when a concurrent change got there first, so concurrent uploads all end up as versions.
"""

from __future__ import annotations

import mimetypes
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import IO, TypeVar

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from . import checksums, clients, quota, storage
from .accounts import get_user
from .auth import Caller
from .checksums import Checksums
from .config import settings
from .errors import (
    Conflict,
    ExplicitDeletionOfLastVersion,
    InvalidHttpRange,
    MultipleProjects,
    ObjectNotFound,
    PayloadTooLarge,
    PermissionDenied,
    QgisProjectFileNotAllowed,
    RestrictedProjectModification,
)
from .file_rules import check_qgis_project, is_attachment, is_qgis_file, is_restricted, validate_name
from .inputs import FileDownload
from .models import FileVersion, Project, ProjectFile, User
from .models.base import Transaction, utcnow
from .models.projects import ProjectType
from .observability import count_bytes
from .permissions import Action, ProjectRole, allowed

MAX_ATTEMPTS = 8
RANGE_PATTERN = re.compile(r"^bytes=(\d+)-(\d*)$")
T = TypeVar("T")
EXTRA_CONTENT_TYPES = {
    ".gpkg": "application/geopackage+sqlite3",
    ".qgs": "application/x-qgis-project",
    ".qgz": "application/x-qgis-project-container",
}


def content_type_for(name: str) -> str:
    suffix = name[name.rfind("."):].lower() if "." in name else ""
    return EXTRA_CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


@dataclass(frozen=True)
class UploadTarget:
    """A file name that passed every rule for this caller and project."""

    project: Project
    name: str
    is_attachment: bool
    is_qgis: bool
    is_restricted: bool


def check_upload(project: Project, role: ProjectRole | None, name: str) -> UploadTarget:
    """Every rule an upload must pass before any byte is stored (reference §4.3)."""
    validate_name(name)
    attachment = is_attachment(project, name)
    if not allowed(role, Action.UPLOAD_ATTACHMENT if attachment else Action.UPLOAD_FILE):
        if allowed(role, Action.UPLOAD_ATTACHMENT):
            raise PermissionDenied("Reporters may upload attachments only.")
        raise PermissionDenied("You are not allowed to upload files to this project.")
    restricted = is_restricted(project, name)
    if restricted and not allowed(role, Action.UPLOAD_RESTRICTED_FILE):
        raise RestrictedProjectModification()
    qgis = is_qgis_file(name)
    if qgis and project.project_type == ProjectType.SHARED_DATASETS:
        raise QgisProjectFileNotAllowed("A shared datasets project cannot hold QGIS project files.")
    if qgis and project.the_qgis_file_name not in (None, name):
        raise MultipleProjects(
            f"The project already has the QGIS project file `{project.the_qgis_file_name}`."
        )
    return UploadTarget(project, name, attachment, qgis, restricted)


def check_direct_upload_size(project_id: str, size: int) -> None:
    """Files above the platform's request limit go through the presigned flow instead."""
    limit = settings.max_direct_upload_bytes
    if limit is not None and size > limit:
        raise PayloadTooLarge(
            f"Files above {limit} bytes cannot be sent in one request here; use the presigned "
            f"upload flow: POST /api/v1/uploads/{project_id}/ (see docs/api.md)."
        )


def upload(caller: Caller, target: UploadTarget, content: IO[bytes]) -> FileVersion:
    """Store a file received in the request body (the direct multipart POST)."""
    sums = checksums.of_stream(content)
    check_direct_upload_size(target.project.id, sums.size)
    if target.is_qgis:
        check_qgis_project(target.name, content)
    owner = get_user(target.project.owner)
    quota.reserve(owner, sums.size, enforce=quota.applies_to(caller.client_type))
    key = storage.file_key(target.project.id, target.name)
    try:
        s3_version_id = storage.put_object(key, content, content_type_for(target.name))
    except Exception:
        quota.release(owner.username_key, sums.size)
        raise
    version = record_version(caller, target, s3_version_id, sums)
    count_bytes("BytesUploaded", sums.size)
    return version


class _Contended(Exception):
    """A concurrent change won the race; `project_changed` when it was the project item."""

    def __init__(self, project_changed: bool):
        super().__init__()
        self.project_changed = project_changed


def _commit(tx: Transaction) -> None:
    try:
        tx.commit()
    except TransactWriteError as error:
        failed = tx.failed(error)
        if "project" in failed:
            raise _Contended(project_changed=True) from None
        if "file" in failed or Transaction.conflicted(error):
            raise _Contended(project_changed=False) from None
        raise


def _refreshed(caller: Caller, target: UploadTarget, size: int) -> UploadTarget:
    """The target re-checked against the project as it is now; a transferred project's new
    owner takes over the quota reservation."""
    project = Project.get(target.project.id, consistent_read=True)
    if project.owner_key != target.project.owner_key:
        quota.reserve(get_user(project.owner), size, enforce=quota.applies_to(caller.client_type))
        quota.release(target.project.owner_key, size)
    if target.is_qgis and project.the_qgis_file_name not in (None, target.name):
        raise MultipleProjects(
            f"The project already has the QGIS project file `{project.the_qgis_file_name}`."
        )
    return replace(target, project=project)


def record_version(caller: Caller, target: UploadTarget, s3_version_id: str, sums: Checksums) -> FileVersion:
    """Make stored bytes (already counted against the owner's quota) the file's newest version.

    On failure the S3 version is deleted and the quota released: nothing is left behind.
    """
    key = storage.file_key(target.project.id, target.name)

    def attempt() -> FileVersion:
        return _commit_version(caller, target, s3_version_id, sums)

    def refresh() -> None:
        nonlocal target
        target = _refreshed(caller, target, sums.size)

    try:
        return _retrying(attempt, refresh)
    except Exception:
        storage.delete_version(key, s3_version_id)
        quota.release(target.project.owner_key, sums.size)
        raise


def _retrying(attempt: Callable[[], T], project_changed: Callable[[], None]) -> T:
    """Run `attempt` until no concurrent change of the file or project gets in its way;
    `project_changed` reloads what depends on the project before the next try."""
    for number in range(MAX_ATTEMPTS):
        try:
            return attempt()
        except _Contended as contended:
            if contended.project_changed:
                project_changed()
            time.sleep(random.uniform(0, 0.05 * 2**number))
    raise Conflict("The file is being changed by others; please retry.")


def find_file(project_id: str, name: str) -> ProjectFile | None:
    try:
        return ProjectFile.get(project_id, name, consistent_read=True)
    except DoesNotExist:
        return None


def _commit_version(caller: Caller, target: UploadTarget, s3_version_id: str, sums: Checksums) -> FileVersion:
    project = target.project
    now = utcnow()
    item = find_file(project.id, target.name) or ProjectFile(
        project.id, target.name, uploaded_at=now, uploaded_by=caller.username
    )
    version = FileVersion(
        version_id=str(uuid.uuid4()), s3_version_id=s3_version_id, size=sums.size,
        md5sum=sums.md5sum, sha256=sums.sha256, uploaded_at=now, uploaded_by=caller.username,
    )
    versions = [*item.versions, version]
    keep = max(settings.keep_versions, 1)
    purged, item.versions = versions[:-keep], versions[-keep:]
    item.is_attachment = target.is_attachment
    freed = sum(int(old.size) for old in purged)

    actions = [
        Project.file_storage_bytes.add(sums.size - freed),
        Project.data_last_updated_at.set(now),
    ]
    condition = Project.owner_key == project.owner_key
    if target.is_restricted:
        actions.append(Project.restricted_data_last_updated_at.set(now))
    if target.is_qgis:
        actions.append(Project.the_qgis_file_name.set(target.name))
        condition &= Project.the_qgis_file_name.does_not_exist() | (
            Project.the_qgis_file_name == target.name)

    tx = Transaction()
    tx.save(item, label="file")
    tx.update(project, actions=actions, condition=condition, label="project")
    if freed:
        tx.update(User(project.owner_key), actions=[User.storage_used_bytes.add(-freed)])
    _commit(tx)
    if purged:
        storage.delete_versions(
            storage.file_key(project.id, target.name), [old.s3_version_id for old in purged]
        )
    return version


def list_files(project: Project) -> list[ProjectFile]:
    return sorted(ProjectFile.query(project.id), key=lambda item: item.name)


def get_file(project: Project, name: str) -> ProjectFile:
    item = find_file(project.id, name)
    if item is None or not item.versions:
        raise ObjectNotFound(f"There is no file `{name}` in this project.")
    return item


def find_version(item: ProjectFile, version_id: str | None) -> FileVersion:
    if version_id is None:
        return item.latest
    for version in item.versions:
        if version.version_id == version_id:
            return version
    raise ObjectNotFound(f"`{item.name}` has no version `{version_id}`.")


def _etag_values(header: str) -> set[str]:
    return {value.strip().removeprefix("W/").strip('"') for value in header.split(",") if value.strip()}


def is_not_modified(version: FileVersion, if_none_match: str | None) -> bool:
    if not if_none_match:
        return False
    values = _etag_values(if_none_match)
    return "*" in values or version.md5sum in values


def parse_range(header: str, size: int) -> tuple[int, int]:
    """A single `bytes=first-[last]` range inside the file, or 416 `invalid_http_range`."""
    match = RANGE_PATTERN.match(header)
    if not match:
        raise InvalidHttpRange()
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else size - 1
    if first >= size or (match.group(2) and not first < last < size):
        raise InvalidHttpRange()
    return first, last


@dataclass(frozen=True)
class Download:
    url: str
    version: FileVersion


def download(item: ProjectFile, version: FileVersion, request: FileDownload) -> Download:
    """Where the client gets the bytes: a short-lived presigned URL that needs no auth header.

    A Range header is checked (416 when invalid). QField re-requests a redirect without its Range
    header and appends what arrives, so for QField the URL leads to a temporary object holding
    exactly the requested bytes; other clients keep their Range header and S3 serves it.
    """
    byte_range = parse_range(request.range, int(version.size)) if request.range else None
    first, last = byte_range or (0, int(version.size) - 1)
    count_bytes("BytesDownloaded", last - first + 1)
    filename = item.name.rsplit("/", 1)[-1]
    key = storage.file_key(item.project_id, item.name)
    if byte_range is not None and clients.is_qfield(request.user_agent):
        temporary = storage.copy_range(key, version.s3_version_id, *byte_range)
        return Download(storage.presigned_get(temporary, filename=filename), version)
    url = storage.presigned_get(key, version_id=version.s3_version_id, filename=filename)
    return Download(url, version)


def delete(project: Project, name: str, version_id: str | None) -> None:
    """Delete a file with all its versions, or one version; never the last one explicitly."""

    def attempt() -> None:
        item = get_file(project, name)
        if version_id is not None and len(item.versions) == 1:
            raise ExplicitDeletionOfLastVersion()
        removed = item.versions if version_id is None else [find_version(item, version_id)]
        _commit_deletion(project, item, removed)

    def refresh() -> None:
        nonlocal project
        project = Project.get(project.id, consistent_read=True)

    _retrying(attempt, refresh)


def _commit_deletion(project: Project, item: ProjectFile, removed: list[FileVersion]) -> None:
    now = utcnow()
    freed = sum(int(version.size) for version in removed)
    removed_ids = {version.version_id for version in removed}
    actions = [Project.file_storage_bytes.add(-freed), Project.data_last_updated_at.set(now)]
    if is_restricted(project, item.name):
        actions.append(Project.restricted_data_last_updated_at.set(now))
    everything = len(removed) == len(item.versions)
    if everything and project.the_qgis_file_name == item.name:
        actions.append(Project.the_qgis_file_name.remove())
    tx = Transaction()
    if everything:
        tx.delete(item, label="file")
    else:
        item.versions = [v for v in item.versions if v.version_id not in removed_ids]
        tx.save(item, label="file")
    tx.update(project, actions=actions, condition=Project.owner_key == project.owner_key,
              label="project")
    tx.update(User(project.owner_key), actions=[User.storage_used_bytes.add(-freed)])
    _commit(tx)
    storage.delete_versions(
        storage.file_key(project.id, item.name), [version.s3_version_id for version in removed]
    )

