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
from typing import IO, Any, TypeVar

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.adapters import storage
from chalicelib.config import settings
from chalicelib.errors import (
    Conflict,
    ExplicitDeletionOfLastVersion,
    InvalidHttpRange,
    MultipleProjects,
    ObjectNotFound,
    PayloadTooLarge,
    PermissionDenied,
    RestrictedProjectModification,
    ValidationError,
)
from chalicelib.models import FileVersion, Project, ProjectFile, User
from chalicelib.models.base import Transaction, utcnow
from chalicelib.models.files import ListedFile, listed_file
from chalicelib.models.jobs import JobType
from chalicelib.models.listing import Listing
from chalicelib.models.projects import ProjectType, is_live
from chalicelib.observability import count_bytes
from chalicelib.rules import checksums, client_types, quota
from chalicelib.rules.checksums import Checksums
from chalicelib.rules.file_rules import (
    check_qgis_project,
    is_attachment,
    is_qgis_file,
    is_restricted,
    validate_name,
)
from chalicelib.rules.permissions import Action, ProjectRole, allowed
from chalicelib.services import jobs
from chalicelib.services.accounts import owner_of
from chalicelib.services.auth import Caller
from chalicelib.services.inputs import FileDownload

MAX_ATTEMPTS = 8
# ASCII digits only, at most 19 of them (S3 objects are at most 5 TB).
RANGE_PATTERN = re.compile(r"^bytes=([0-9]{1,19})-([0-9]{0,19})$")
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


def target_of(project: Project, name: str) -> UploadTarget:
    """What a (valid) name is in the project; no permission is checked."""
    return UploadTarget(project, name, is_attachment(project, name), is_qgis_file(name),
                        is_restricted(project, name))


def check_upload(project: Project, role: ProjectRole | None, name: str) -> UploadTarget:
    """Every rule an upload must pass before any byte is stored (docs/api.md, "Files")."""
    name = validate_name(name)
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
        # QFieldCloud answers this one with `validation_error` (a rename to `shared_datasets` of
        # a project with a QGIS file is `qgis_project_file_not_allowed`).
        raise ValidationError("QGIS project files are not allowed in shared datasets projects.")
    if qgis and project.the_qgis_file_name not in (None, name):
        raise MultipleProjects(
            f"The project already has the QGIS project file `{project.the_qgis_file_name}`."
        )
    return target_of(project, name)


def check_direct_upload_size(project_id: str, size: int) -> None:
    """Files above the platform's request limit go through the presigned flow instead."""
    limit = settings.max_direct_upload_bytes
    if limit is not None and size > limit:
        raise PayloadTooLarge(
            f"Files above {limit} bytes cannot be sent in one request here; use the presigned "
            f"upload flow: POST /api/v1/uploads/{project_id}/ (see docs/api.md)."
        )


@dataclass(frozen=True)
class Received:
    """A file's bytes as received in a request body, their checksums being computed meanwhile."""

    content: IO[bytes]
    sums: checksums.Checksumming | checksums.Computed


def receive(content: IO[bytes]) -> Received:
    """Begin the checksums of received bytes (in the background for bytes in memory)."""
    return Received(content, checksums.begin(content))


def upload(caller: Caller, target: UploadTarget, received: Received) -> FileVersion:
    """Store a file received in the request body (the direct multipart POST)."""
    check_direct_upload_size(target.project.id, received.sums.size)
    return store(caller, target, received)


def store(caller: Caller, target: UploadTarget, received: Received) -> FileVersion:
    """Store received bytes in one request to S3 and record them as the file's newest version."""
    content, sums = received.content, received.sums
    if target.is_qgis:
        check_qgis_project(target.name, content)
    owner = owner_of(target.project, caller.user)
    quota.reserve(owner, sums.size, caller.client_type)
    key = storage.file_key(target.project.id, target.name)
    try:
        s3_version_id = storage.put_object(key, content, content_type_for(target.name), sums.sha256())
    except Exception:
        quota.release(owner.username_key, sums.size)
        raise
    version = record_version(caller, target, s3_version_id, sums.result())
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
    project = _live_project(target.project.id)
    if project.owner_key != target.project.owner_key:
        quota.reserve(owner_of(project, caller.user), size, caller.client_type)
        quota.release(target.project.owner_key, size)
    if target.is_qgis and project.the_qgis_file_name not in (None, target.name):
        raise MultipleProjects(
            f"The project already has the QGIS project file `{project.the_qgis_file_name}`."
        )
    return replace(target, project=project)


def record_version(caller: Caller, target: UploadTarget, s3_version_id: str, sums: Checksums,
                   undo: Callable[[], None] | None = None) -> FileVersion:
    """Make stored bytes (already counted against the owner's quota) the file's newest version.

    On failure the S3 version is deleted and the quota released: nothing is left behind. `undo`
    does that instead, for bytes and quota that a presigned upload's session holds.
    """
    key = storage.file_key(target.project.id, target.name)

    def attempt() -> FileVersion:
        return _commit_versions(caller, target.project, [NewVersion(target, s3_version_id, sums)])[0]

    def refresh() -> None:
        nonlocal target
        target = _refreshed(caller, target, sums.size)

    try:
        version = _retrying(attempt, refresh)
    except Exception:
        if undo is not None:
            undo()
        else:
            storage.delete_version(key, s3_version_id)
            quota.release(target.project.owner_key, sums.size)
        raise
    _process_if_needed(caller, target)
    return version


def _process_if_needed(caller: Caller, target: UploadTarget) -> None:
    """A new QGIS project file, or a new data file of a project that has one, is processed again
    (layers, validity, thumbnail): a process_projectfile job (docs/jobs.md), as in QFieldCloud."""
    project = target.project
    if target.is_qgis or (project.the_qgis_file_name and not target.is_attachment):
        jobs.trigger(caller, Project.get(project.id), JobType.PROCESS_PROJECTFILE)


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


def _live_project(project_id: str) -> Project:
    """The project as it is now; 404 once it is deleted or being deleted (nothing more may be
    committed to it)."""
    try:
        project = Project.get(project_id, consistent_read=True)
    except DoesNotExist:
        project = None
    if project is None or project.deleting_since is not None:
        raise ObjectNotFound(f"There is no project `{project_id}`.")
    return project


def find_file(project_id: str, name: str) -> ProjectFile | None:
    try:
        return ProjectFile.get(project_id, name, consistent_read=True)
    except DoesNotExist:
        return None


@dataclass(frozen=True)
class NewVersion:
    """Stored bytes (already counted against the owner's quota) to become a file's newest
    version. With `based_on`, the file item as it was read: the commit fails if it changed."""

    target: UploadTarget
    s3_version_id: str
    sums: Checksums
    based_on: ProjectFile | None = None


def _commit_versions(caller: Caller, project: Project, news: list[NewVersion],
                     also: Callable[[Transaction], None] | None = None) -> list[FileVersion]:
    """Add the versions, and the project's and owner's counters, in one transaction (with what
    `also` adds to it)."""
    now = utcnow()
    tx = Transaction()
    versions, purges = [], []
    added = freed = created = 0
    project_actions = [Project.data_last_updated_at.set(now)]
    condition = is_live() & (Project.owner_key == project.owner_key)
    for new in news:
        target = new.target
        item = new.based_on or find_file(project.id, target.name)
        if item is None:
            # Saved on the condition that it still does not exist (its `lock`): counted once.
            item = ProjectFile(project.id, target.name, uploaded_at=now, uploaded_by=caller.username)
            created += 1
        version = FileVersion(
            version_id=str(uuid.uuid4()), s3_version_id=new.s3_version_id, size=new.sums.size,
            md5sum=new.sums.md5sum, sha256=new.sums.sha256, uploaded_at=now,
            uploaded_by=caller.username,
        )
        kept = [*item.versions, version]
        keep = max(settings.keep_versions, 1)
        purged, item.versions = kept[:-keep], kept[-keep:]
        item.is_attachment = target.is_attachment
        added += new.sums.size
        freed += sum(int(old.size) for old in purged)
        if target.is_restricted:
            project_actions.append(Project.restricted_data_last_updated_at.set(now))
        if target.is_qgis:
            project_actions.append(Project.the_qgis_file_name.set(target.name))
            condition &= Project.the_qgis_file_name.does_not_exist() | (
                Project.the_qgis_file_name == target.name)
        tx.save(item, label="file")
        versions.append(version)
        purges.append((target.name, purged))
    project_actions.append(Project.file_storage_bytes.add(added - freed))
    if created:
        project_actions.append(Project.file_count.add(created))
    tx.update(project, actions=_unique(project_actions), condition=condition, label="project")
    if freed:
        tx.update(User(project.owner_key), actions=[User.storage_used_bytes.add(-freed)])
    if also is not None:
        also(tx)
    _commit(tx)
    for name, purged in purges:
        if purged:
            storage.delete_versions(storage.file_key(project.id, name), [old.s3_version_id for old in purged])
    return versions


def _unique(actions: list) -> list:
    """One action per attribute (a transaction may set each only once)."""
    seen: dict[str, Any] = {}
    for action in actions:
        seen.setdefault(str(action.values[0]), action)
    return list(seen.values())


def commit_edits(caller: Caller, project: Project, news: list[NewVersion],
                 also: Callable[[Transaction], None]) -> list[FileVersion]:
    """Commit files edited by a job, each `based_on` the version the job read, together with
    the job's completion (`also`). 409 `conflict` if any of the files changed meanwhile: nothing
    is committed, the stored bytes are deleted and the quota released."""
    try:
        return _commit_versions(caller, project, news, also)
    except _Contended:
        raise Conflict("Project files changed while the job ran; nothing was committed.") from None
    finally:
        committed = find_file(project.id, news[0].target.name) if news else None
        ids = {v.s3_version_id for v in committed.versions} if committed else set()
        for new in news:
            if new.s3_version_id not in ids:
                storage.delete_version(storage.file_key(project.id, new.target.name), new.s3_version_id)
                quota.release(project.owner_key, new.sums.size)


def list_files(project: Project) -> Listing[ProjectFile]:
    """The project's files by name (DynamoDB's key order: UTF-8 bytes, which is code point order)."""
    return Listing(ProjectFile, project.id, total=int(project.file_count or 0))


def listed_files(project: Project) -> Listing[ListedFile | ProjectFile]:
    """`list_files` as the API lists them: read-only, each version list as stored (`listed_file`)."""
    return Listing(ProjectFile, project.id, total=int(project.file_count or 0), reader=listed_file)


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


def is_not_modified(md5sum: str, if_none_match: str | None) -> bool:
    if not if_none_match:
        return False
    values = _etag_values(if_none_match)
    return "*" in values or md5sum in values


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
class StoredBytes:
    """Bytes the API can hand out: an S3 object (or one version of it) and its checksum."""

    key: str
    version_id: str | None
    size: int
    md5sum: str
    name: str


def stored_version(item: ProjectFile, version: FileVersion) -> StoredBytes:
    return StoredBytes(storage.file_key(item.project_id, item.name), version.s3_version_id,
                       int(version.size), version.md5sum, item.name)


@dataclass(frozen=True)
class Served:
    """How a download is answered: `url` to redirect to, or None when the client has it (304)."""

    url: str | None
    etag: str


def serve(stored: StoredBytes, request: FileDownload) -> Served:
    """Where the client gets the bytes: a short-lived presigned URL that needs no auth header.

    `If-None-Match` with the checksum means the client has them (304). A Range header is checked
    (416 when invalid). QField re-requests a redirect without its Range header and appends what
    arrives, so for QField the URL leads to a temporary object holding exactly the requested
    bytes; other clients keep their Range header and S3 serves it.
    """
    etag = f'"{stored.md5sum}"'
    if is_not_modified(stored.md5sum, request.if_none_match):
        return Served(None, etag)
    byte_range = parse_range(request.range, stored.size) if request.range else None
    first, last = byte_range or (0, stored.size - 1)
    count_bytes("BytesDownloaded", last - first + 1)
    filename = stored.name.rsplit("/", 1)[-1]
    if byte_range is not None and client_types.is_qfield(request.user_agent):
        temporary = storage.copy_range(stored.key, stored.version_id, *byte_range)
        return Served(storage.presigned_get(temporary, filename=filename), etag)
    return Served(storage.presigned_get(stored.key, version_id=stored.version_id, filename=filename), etag)


def restore(caller: Caller, target: UploadTarget, version_id: str) -> FileVersion:
    """An older version of a file copied inside S3 as its newest version (no byte passes through
    the API): the same rules and quota as an upload of those bytes, the same checksums."""
    item = get_file(target.project, target.name)
    old = find_version(item, version_id)
    owner = owner_of(target.project, caller.user)
    quota.reserve(owner, int(old.size), caller.client_type)
    key = storage.file_key(target.project.id, target.name)
    try:
        s3_version_id = storage.copy_version(key, old.s3_version_id, int(old.size),
                                             content_type_for(target.name))
    except Exception:
        quota.release(owner.username_key, int(old.size))
        raise
    return record_version(caller, target, s3_version_id, Checksums(int(old.size), old.md5sum, old.sha256))


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
        project = _live_project(project.id)

    _retrying(attempt, refresh)


def remove_stored_version(project_id: str, name: str, s3_version_id: str) -> bool:
    """Remove the version stored as S3 version `s3_version_id` (the file with it, if it is the
    only one), with its bytes and the quota they held; False if it is not there (any more)."""
    try:
        project = _live_project(project_id)
    except ObjectNotFound:
        return False

    def attempt() -> bool:
        item = find_file(project.id, name)
        removed = [v for v in item.versions if v.s3_version_id == s3_version_id] if item else []
        if removed:
            _commit_deletion(project, item, removed)
        return bool(removed)

    def refresh() -> None:
        nonlocal project
        project = _live_project(project.id)

    return _retrying(attempt, refresh)


def _commit_deletion(project: Project, item: ProjectFile, removed: list[FileVersion]) -> None:
    now = utcnow()
    freed = sum(int(version.size) for version in removed)
    removed_ids = {version.version_id for version in removed}
    actions = [Project.file_storage_bytes.add(-freed), Project.data_last_updated_at.set(now)]
    if is_restricted(project, item.name):
        actions.append(Project.restricted_data_last_updated_at.set(now))
    everything = len(removed) == len(item.versions)
    if everything:
        actions.append(Project.file_count.add(-1))
    if everything and project.the_qgis_file_name == item.name:
        actions.append(Project.the_qgis_file_name.remove())
    tx = Transaction()
    if everything:
        tx.delete(item, label="file")
    else:
        item.versions = [v for v in item.versions if v.version_id not in removed_ids]
        tx.save(item, label="file")
    tx.update(project, actions=actions, condition=is_live() & (Project.owner_key == project.owner_key),
              label="project")
    tx.update(User(project.owner_key), actions=[User.storage_used_bytes.add(-freed)])
    _commit(tx)
    storage.delete_versions(
        storage.file_key(project.id, item.name), [version.s3_version_id for version in removed]
    )

