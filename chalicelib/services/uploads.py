"""Presigned multipart uploads, for files too large for one request through API Gateway.

The client asks to begin (the same rules, permissions and quota as a direct upload are checked),
PUTs the 8 MiB parts straight to S3 with presigned URLs (in parallel, resumable: `status` tells
which parts S3 already holds), then asks to complete. Completion checks the rules again, counts
the size against the owner's quota (so an abandoned upload never holds quota), assembles the
parts in S3 and records the new version with its checksums: the md5sum from the parts' ETags,
and the SHA-256 either declared by the client (then checked in the background by streaming the
object once: a version whose bytes differ is removed) or, without a declaration, computed by
streaming the object before answering (never holding it in memory).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from tempfile import SpooledTemporaryFile
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition

from chalicelib.adapters import background, storage
from chalicelib.config import settings
from chalicelib.errors import Conflict, ObjectNotFound, OverQuota, ValidationError
from chalicelib.models import FileVersion, Project, UploadSession, User
from chalicelib.models.base import Transaction, utcnow
from chalicelib.models.projects import is_live
from chalicelib.observability import count_bytes, logger
from chalicelib.rules import checksums, quota
from chalicelib.rules.checksums import PART_SIZE, Checksums
from chalicelib.rules.file_rules import check_qgis_project
from chalicelib.rules.permissions import AccountAction, ProjectRole, allowed_on_account
from chalicelib.services import files
from chalicelib.services.accounts import owner_of
from chalicelib.services.auth import Caller
from chalicelib.services.inputs import UploadBegin

MAX_PARTS = 10_000
SESSION_LIFETIME = timedelta(days=1)
# Longer than the API's function may run (15 minutes): a claim this old was cut off.
CLAIM_LIFETIME = timedelta(minutes=16)


def _part_count(size: int) -> int:
    return max(math.ceil(size / PART_SIZE), 1)


def _part_size(session: UploadSession, number: int) -> int:
    if number < _part_count(int(session.size)):
        return PART_SIZE
    return int(session.size) - PART_SIZE * (number - 1)


def begin(caller: Caller, project: Project, role: ProjectRole | None, data: UploadBegin) -> UploadSession:
    target = files.check_upload(project, role, data.name)
    size = data.size
    if not 0 < size <= PART_SIZE * MAX_PARTS:
        raise ValidationError(f"`size` must be between 1 and {PART_SIZE * MAX_PARTS} bytes.")
    quota.check_fits(owner_of(project, caller.user), size, caller.client_type)
    key = storage.file_key(project.id, target.name)
    s3_upload_id = storage.create_multipart_upload(key, files.content_type_for(target.name))
    session = UploadSession(
        str(uuid.uuid4()), project_id=project.id, name=target.name, s3_key=key,
        s3_upload_id=s3_upload_id, size=size, part_size=PART_SIZE, created_by=caller.key,
        expires_at=utcnow() + SESSION_LIFETIME,
    )
    tx = Transaction()
    try:
        with tx:
            tx.check(Project, project.id, condition=is_live(), label="project")
            tx.save(session)
    except Exception as error:
        storage.abort_multipart_upload(key, s3_upload_id)
        if isinstance(error, TransactWriteError) and "project" in tx.failed(error):
            raise ObjectNotFound(f"There is no project `{project.id}`.") from None
        raise
    return session


def get_session(caller: Caller, project: Project, upload_id: str) -> UploadSession:
    try:
        session = UploadSession.get(upload_id, consistent_read=True)
    except DoesNotExist:
        session = None
    if (
        session is None
        or session.project_id != project.id
        or not allowed_on_account(caller.user, session.created_by, AccountAction.USE_UPLOAD_SESSION)
    ):
        raise ObjectNotFound(f"There is no upload `{upload_id}` of yours in this project.")
    return session


@dataclass(frozen=True)
class PartState:
    number: int
    size: int
    etag: str | None = None  # of a part S3 holds
    url: str | None = None  # where to PUT a missing part


@dataclass(frozen=True)
class UploadState:
    """A session, the parts S3 already holds, and presigned URLs for the missing ones."""

    session: UploadSession
    uploaded: list[PartState] = field(default_factory=list)
    missing: list[PartState] = field(default_factory=list)


def state(session: UploadSession) -> UploadState:
    if session.s3_version_id:  # assembled: S3 no longer lists the parts
        return UploadState(session)
    held = {p["PartNumber"]: p for p in storage.uploaded_parts(session.s3_key, session.s3_upload_id)}
    uploaded = [PartState(n, int(p["Size"]), etag=p["ETag"]) for n, p in sorted(held.items())]
    missing = []
    if session.state == "open":
        missing = [
            PartState(n, _part_size(session, n), url=storage.presigned_part_url(
                session.s3_key, session.s3_upload_id, n, settings.presigned_url_seconds))
            for n in range(1, _part_count(int(session.size)) + 1) if n not in held
        ]
    return UploadState(session, uploaded, missing)


def _verified_parts(session: UploadSession) -> list[dict[str, Any]]:
    parts = storage.uploaded_parts(session.s3_key, session.s3_upload_id)
    expected = {n: _part_size(session, n) for n in range(1, _part_count(int(session.size)) + 1)}
    got = {part["PartNumber"]: int(part["Size"]) for part in parts}
    missing = sorted(n for n in expected if n not in got)
    if missing:
        raise ValidationError(f"The upload is incomplete; parts still missing: {missing[:20]}.")
    wrong = sorted(n for n, size in got.items() if expected.get(n) != size)
    if wrong:
        raise ValidationError(
            f"Parts {wrong[:20]} have the wrong size; every part is {PART_SIZE} bytes but the last."
        )
    return parts


def _claim(session: UploadSession) -> None:
    """Only one completion at a time; one that was cut off (no answer for longer than a Lambda
    may run) can be taken over by a retry."""
    now = utcnow()
    is_free = UploadSession.state == "open"
    is_abandoned = UploadSession.claimed_at < now - CLAIM_LIFETIME
    try:
        session.update(
            actions=[UploadSession.state.set("completing"), UploadSession.claimed_at.set(now)],
            condition=is_free | is_abandoned,
        )
    except UpdateError:
        raise Conflict("This upload is being completed; ask again in a minute.") from None


def _release_claim(session: UploadSession) -> None:
    session.update(actions=[UploadSession.state.set("open"), UploadSession.claimed_at.remove()])


def _checksums_of_stored(session: UploadSession, is_qgis: bool,
                         parts: list[dict[str, Any]] | None) -> checksums.Checksums:
    """The stored object's checksums, read back once. With the parts S3 listed, their ETags
    spare computing the MD5s (checksums.StoredPartsHasher)."""
    if parts:  # in part number order (storage.uploaded_parts)
        hasher: checksums.Hasher = checksums.StoredPartsHasher([str(part["ETag"]) for part in parts])
    else:
        hasher = checksums.Hasher()
    with SpooledTemporaryFile(max_size=PART_SIZE) as copy:
        for chunk in storage.stream_object(session.s3_key, session.s3_version_id):
            hasher.update(chunk)
            if is_qgis:  # QGIS project files are small; they are checked like direct uploads
                copy.write(chunk)
        if is_qgis:
            copy.seek(0)
            check_qgis_project(session.name, copy)
    return hasher.result()


def _already_recorded(session: UploadSession) -> FileVersion | None:
    """The version this session became, if an interrupted completion got that far."""
    item = files.find_file(session.project_id, session.name)
    versions = item.versions if item else []
    return next((v for v in versions if v.s3_version_id == session.s3_version_id), None)


def _declared_checksums(session: UploadSession, is_qgis: bool, parts: list[dict[str, Any]] | None,
                        assembled: storage.Assembled | None, sha256: str | None) -> Checksums | None:
    """The checksums without reading the object back: the md5sum from the parts' ETags and the
    SHA-256 the client declared. None where the server reads the object instead: nothing
    declared, a QGIS project file (its content is checked), the parts not at hand (a completion
    taken over after S3 assembled them) or part ETags that are not MD5s."""
    if sha256 is None or is_qgis or not parts or assembled is None or not assembled.part_etags_are_md5s:
        return None
    md5s = checksums.md5s_of_part_etags([str(part["ETag"]) for part in parts])
    if md5s is None:
        return None
    return Checksums(size=int(session.size), md5sum=checksums.etag_of(md5s), sha256=sha256)


@background.task
def check_declared_sha256(project_id: str, name: str, s3_version_id: str, sha256: str) -> None:
    """A version recorded with the SHA-256 its client declared: the stored bytes are read back
    and hashed, and if they differ the version is removed, with its bytes and the quota they
    held (the file with it, if it was its only version). Safe to run again."""
    digest = hashlib.sha256()
    try:
        for chunk in storage.stream_object(storage.file_key(project_id, name), s3_version_id):
            digest.update(chunk)
    except ClientError as error:
        if storage.is_missing(error):
            return  # removed meanwhile
        raise
    if digest.hexdigest() == sha256:
        return
    removed = files.remove_stored_version(project_id, name, s3_version_id)
    logger.error("A presigned upload's bytes do not match the SHA-256 its client declared",
                 extra={"project_id": project_id, "file": name, "s3_version_id": s3_version_id,
                        "declared_sha256": sha256, "stored_sha256": digest.hexdigest(),
                        "version_removed": removed})


def complete(
    caller: Caller, project: Project, role: ProjectRole | None, session: UploadSession,
    declared_sha256: str | None = None,
) -> FileVersion:
    """Assemble, checksum and record the upload. Each step is written to the session before the
    next one starts, so a retry of an interrupted completion picks up where it stopped."""
    # The rules are checked again: the project may have changed while the parts were uploaded.
    target = files.check_upload(project, role, session.name)
    parts = None if session.s3_version_id else _verified_parts(session)
    _claim(session)
    size = int(session.size)
    if not session.quota_counted:
        try:
            quota.reserve(owner_of(project, caller.user), size, caller.client_type)
        except OverQuota:
            _release_claim(session)  # the parts stay: free some space and complete again
            raise
        try:
            session.update(actions=[UploadSession.quota_counted.set(True)], condition=_still_claimed())
        except UpdateError:
            quota.release(project.owner_key, size)  # dropped meanwhile: its project is being deleted
            raise ObjectNotFound("This upload was aborted.") from None
    assembled = None
    if not session.s3_version_id:
        try:
            assembled = storage.complete_multipart_upload(session.s3_key, session.s3_upload_id, parts)
        except ClientError as error:
            if error.response["Error"]["Code"] != "NoSuchUpload":
                raise
            discard(session, project.owner_key)  # aborted meanwhile (its project is being deleted)
            raise ObjectNotFound("This upload was aborted.") from None
        try:
            session.update(actions=[UploadSession.s3_version_id.set(assembled.version_id)],
                           condition=_still_claimed())
        except UpdateError:  # dropped meanwhile, its quota given back: the bytes go too
            storage.delete_version(session.s3_key, assembled.version_id)
            raise ObjectNotFound("This upload was aborted.") from None
    recorded = _already_recorded(session)
    if recorded is None:
        declared = _declared_checksums(session, target.is_qgis, parts, assembled, declared_sha256)
        try:
            sums = declared or _checksums_of_stored(session, target.is_qgis, parts)
        except Exception:
            discard(session, project.owner_key)
            raise
        # If the commit fails, the session is dropped with its S3 version and its quota, once:
        # the purge of a project being deleted may have dropped it already.
        recorded = files.record_version(caller, target, session.s3_version_id, sums,
                                        undo=lambda: discard(session, project.owner_key))
        if declared is not None:
            background.start(check_declared_sha256, project_id=project.id, name=session.name,
                             s3_version_id=session.s3_version_id, sha256=declared.sha256)
    session.delete()
    count_bytes("BytesUploaded", size)
    return recorded


def _still_claimed() -> Condition:
    """The session is still there, claimed: the purge of a project being deleted drops the
    sessions of completions in progress too (one cut off would otherwise hold its quota for good),
    and an update must not write the session again."""
    return UploadSession.state == "completing"


def discard(session: UploadSession, owner_key: str) -> None:
    """Drop a session that will not be recorded: its assembled S3 version and the quota it
    holds go with it, once, whoever calls this first."""
    unrecorded = _already_recorded(session) is None
    if session.s3_version_id and unrecorded:
        storage.delete_version(session.s3_key, session.s3_version_id)
    holds_quota = session.quota_counted and unrecorded
    tx = Transaction()
    try:
        with tx:
            tx.delete(session, condition=(UploadSession.state == session.state)
                      & (UploadSession.quota_counted == bool(session.quota_counted)))
            if holds_quota:
                tx.update(User(owner_key), actions=[User.storage_used_bytes.add(-int(session.size))])
    except TransactWriteError:
        pass  # someone else dropped or took it over meanwhile


def abort(session: UploadSession) -> None:
    storage.abort_multipart_upload(session.s3_key, session.s3_upload_id)
    session.delete()
