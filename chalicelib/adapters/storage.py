"""The versioned S3 bucket: object keys, presigned URLs and bulk deletion.

Every object key is built here (`project_prefix`, `file_key`, `thumbnail_key`), so the layout has
one home. Bytes of project files never pass through the API when presigned URLs can carry them.
"""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters import aws
from chalicelib.config import settings

DELETE_BATCH = 1000
STREAM_CHUNK = 1024 * 1024
# S3 copies at most 5 GiB per part; ranges served to resuming clients are copied in such parts.
COPY_PART_MAX = 5 * 1024**3
# Objects the API writes for a short while only (ranges served to resuming clients).
TEMPORARY_PREFIX = "tmp/"
TEMPORARY_OBJECT_DAYS = 1
ABANDONED_MULTIPART_UPLOAD_DAYS = 2

# The bucket's lifecycle, in the S3 API's shape: devstack applies it, infra declares it.
LIFECYCLE_RULES: list[dict[str, Any]] = [
    {
        "ID": "abort-abandoned-multipart-uploads",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABANDONED_MULTIPART_UPLOAD_DAYS},
    },
    {
        "ID": "expire-temporary-objects",
        "Status": "Enabled",
        "Filter": {"Prefix": TEMPORARY_PREFIX},
        "Expiration": {"Days": TEMPORARY_OBJECT_DAYS},
        "NoncurrentVersionExpiration": {"NoncurrentDays": TEMPORARY_OBJECT_DAYS},
    },
]


PROJECTS_PREFIX = "projects/"


def project_prefix(project_id: str) -> str:
    return f"{PROJECTS_PREFIX}{project_id}/"


def file_key(project_id: str, name: str) -> str:
    return f"{project_prefix(project_id)}files/{name}"


def thumbnail_key(project_id: str) -> str:
    return f"{project_prefix(project_id)}meta/thumbnail"


def job_key(project_id: str, job_id: str, name: str) -> str:
    """A job's log (`output.log`) and report (`feedback.json`)."""
    return f"{project_prefix(project_id)}jobs/{job_id}/{name}"


def package_prefix(project_id: str, job_id: str) -> str:
    return f"{project_prefix(project_id)}packages/{job_id}/"


def package_key(project_id: str, job_id: str, name: str) -> str:
    """A file of the offline package a package job made; packages are immutable per job."""
    return package_prefix(project_id, job_id) + name


# S3 keys are at most 1024 bytes of UTF-8.
MAX_KEY_BYTES = 1024


def key_bytes_left_for_names() -> int:
    """How many bytes a file name may take so that every key made of it (a project file, a
    package file) stays within S3's limit."""
    an_id = str(uuid.UUID(int=0))
    longest_prefix = max(len(file_key(an_id, "")), len(package_key(an_id, an_id, "")))
    return MAX_KEY_BYTES - longest_prefix


def temporary_key() -> str:
    """A key under the prefix that a lifecycle rule empties after a day."""
    return f"{TEMPORARY_PREFIX}{uuid.uuid4()}"


def put_temporary(body: bytes, content_type: str, content_encoding: str | None = None) -> str:
    """Store bytes for a short while (the lifecycle rule of TEMPORARY_PREFIX removes them); their key."""
    key = temporary_key()
    extra = {"ContentEncoding": content_encoding} if content_encoding else {}
    aws.s3().put_object(Bucket=settings.bucket, Key=key, Body=body, ContentType=content_type, **extra)
    return key


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """A header value safe for any name: an ASCII fallback plus the RFC 5987 UTF-8 form."""
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace('"', "_")
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


_written: ContextVar[list[tuple[str, str]] | None] = ContextVar("written", default=None)


@contextlib.contextmanager
def writes_recorded() -> Iterator[list[tuple[str, str]]]:
    """The (key, version id) of every object version stored meanwhile, in this thread."""
    written: list[tuple[str, str]] = []
    token = _written.set(written)
    try:
        yield written
    finally:
        _written.reset(token)


def _stored(key: str, version_id: str) -> str:
    if (written := _written.get()) is not None:
        written.append((key, version_id))
    return version_id


def put_object(key: str, body: IO[bytes] | bytes, content_type: str, sha256: str | None = None) -> str:
    """Store bytes under `key`; the S3 version id of the new version. With the bytes' SHA-256
    (hex), S3 checks that it received exactly them, and boto3 need not read them for a checksum
    of its own."""
    checksum = ({"ChecksumAlgorithm": "SHA256",
                 "ChecksumSHA256": base64.b64encode(bytes.fromhex(sha256)).decode("ascii")} if sha256 else {})
    response = aws.s3().put_object(
        Bucket=settings.bucket, Key=key, Body=body, ContentType=content_type, **checksum
    )
    return _stored(key, response["VersionId"])


def presigned_get(
    key: str,
    *,
    version_id: str | None = None,
    filename: str | None = None,
    disposition: str = "attachment",
    content_type: str | None = None,
) -> str:
    params: dict[str, Any] = {"Bucket": settings.bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    if filename:
        params["ResponseContentDisposition"] = content_disposition(filename, disposition)
    if content_type:
        params["ResponseContentType"] = content_type
    return aws.s3_presigner().generate_presigned_url(
        "get_object", Params=params, ExpiresIn=settings.presigned_url_seconds
    )


def is_missing(error: ClientError) -> bool:
    """Whether S3 refused because the object (or the version asked for) is not there."""
    return error.response["Error"]["Code"] in ("NoSuchKey", "NoSuchVersion", "404")


def get_bytes(key: str) -> bytes | None:
    """A small object's bytes (job reports and logs), or None if there is none."""
    try:
        return aws.s3().get_object(Bucket=settings.bucket, Key=key)["Body"].read()
    except ClientError as error:
        if is_missing(error):
            return None
        raise


@dataclass(frozen=True)
class Fetched:
    """An object's size, and its bytes if it was small enough to read (else None)."""

    size: int
    data: bytes | None


def get_if_small(key: str, max_bytes: int) -> Fetched | None:
    """An object's bytes if it has at most `max_bytes`, else only its size: one GetObject either
    way, whose body is not read when it is larger. None if there is no such object."""
    try:
        response = aws.s3().get_object(Bucket=settings.bucket, Key=key)
    except ClientError as error:
        if is_missing(error):
            return None
        raise
    size = int(response["ContentLength"])
    with contextlib.closing(response["Body"]) as body:
        return Fetched(size, body.read() if size <= max_bytes else None)


def download_to(key: str, path: str, version_id: str | None = None) -> None:
    """Stream an object (or one of its versions) to a local file, in parts for large ones."""
    extra = {"VersionId": version_id} if version_id else None
    aws.s3().download_file(settings.bucket, key, path, ExtraArgs=extra)


def stream_object(key: str, version_id: str) -> Iterator[bytes]:
    """The object's bytes in chunks of at most 1 MiB, never the whole object in memory."""
    body = aws.s3().get_object(Bucket=settings.bucket, Key=key, VersionId=version_id)["Body"]
    try:
        yield from body.iter_chunks(STREAM_CHUNK)
    finally:
        body.close()


def delete_version(key: str, version_id: str) -> None:
    aws.s3().delete_object(Bucket=settings.bucket, Key=key, VersionId=version_id)


def delete_versions(key: str, version_ids: list[str]) -> None:
    for start in range(0, len(version_ids), DELETE_BATCH):
        batch = version_ids[start:start + DELETE_BATCH]
        _delete_batch([{"Key": key, "VersionId": version_id} for version_id in batch])


def create_multipart_upload(key: str, content_type: str) -> str:
    response = aws.s3().create_multipart_upload(
        Bucket=settings.bucket, Key=key, ContentType=content_type
    )
    return response["UploadId"]


def upload_part(key: str, upload_id: str, number: int, data: bytes | bytearray, md5: bytes) -> str:
    """Store one part of a multipart upload, with its MD5 for S3 to check; the part's ETag."""
    response = aws.s3().upload_part(
        Bucket=settings.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data,
        ContentMD5=base64.b64encode(md5).decode("ascii"),
    )
    return response["ETag"]


def presigned_part_url(key: str, upload_id: str, part_number: int, expires_in: int) -> str:
    return aws.s3_presigner().generate_presigned_url(
        "upload_part",
        Params={"Bucket": settings.bucket, "Key": key, "UploadId": upload_id,
                "PartNumber": part_number},
        ExpiresIn=expires_in,
    )


def uploaded_parts(key: str, upload_id: str) -> list[dict[str, Any]]:
    """The parts S3 holds for a multipart upload: `PartNumber`, `ETag`, `Size`."""
    paginator = aws.s3().get_paginator("list_parts")
    parts: list[dict[str, Any]] = []
    for page in paginator.paginate(Bucket=settings.bucket, Key=key, UploadId=upload_id):
        parts.extend(page.get("Parts", []))
    return sorted(parts, key=lambda part: part["PartNumber"])


@dataclass(frozen=True)
class Assembled:
    """A version S3 assembled from parts. S3's ETag of a part is the part's MD5 unless the object
    is encrypted with SSE-KMS or SSE-C (the bucket infra/ creates uses SSE-S3)."""

    version_id: str
    part_etags_are_md5s: bool


def complete_multipart_upload(key: str, upload_id: str, parts: list[dict[str, Any]]) -> Assembled:
    """Assemble the parts into a new version of `key`."""
    response = aws.s3().complete_multipart_upload(
        Bucket=settings.bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]},
    )
    plain = (response.get("ServerSideEncryption") in (None, "AES256")
             and "SSECustomerAlgorithm" not in response)
    return Assembled(_stored(key, response["VersionId"]), plain)


def abort_multipart_upload(key: str, upload_id: str) -> None:
    aws.s3().abort_multipart_upload(Bucket=settings.bucket, Key=key, UploadId=upload_id)


def copy_range(key: str, version_id: str, first: int, last: int) -> str:
    """A new temporary object holding exactly bytes `first..last` of a version, copied inside S3
    (the bytes do not pass through the API); its key."""
    target = temporary_key()
    _copy_parts(key, version_id, first, last, target, content_type=None)
    return target


def copy_version(key: str, version_id: str, size: int, content_type: str) -> str:
    """A version of `key` copied inside S3 as the key's newest version (the bytes do not pass
    through the API, whatever their size); the new S3 version id."""
    if size <= COPY_PART_MAX:
        response = aws.s3().copy_object(
            Bucket=settings.bucket, Key=key, ContentType=content_type, MetadataDirective="REPLACE",
            CopySource={"Bucket": settings.bucket, "Key": key, "VersionId": version_id})
        return response["VersionId"]
    return _copy_parts(key, version_id, 0, size - 1, key, content_type).version_id


def _copy_parts(key: str, version_id: str, first: int, last: int, target: str,
                content_type: str | None) -> Assembled:
    """Bytes `first..last` of a version copied into a new version of `target`, in parts of at
    most COPY_PART_MAX (S3's limit of one copy)."""
    s3 = aws.s3()
    extra = {"ContentType": content_type} if content_type else {}
    upload_id = s3.create_multipart_upload(Bucket=settings.bucket, Key=target, **extra)["UploadId"]
    parts = []
    try:
        for number, start in enumerate(range(first, last + 1, COPY_PART_MAX), start=1):
            end = min(start + COPY_PART_MAX - 1, last)
            copied = s3.upload_part_copy(
                Bucket=settings.bucket, Key=target, UploadId=upload_id, PartNumber=number,
                CopySource={"Bucket": settings.bucket, "Key": key, "VersionId": version_id},
                CopySourceRange=f"bytes={start}-{end}",
            )
            parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
        return complete_multipart_upload(target, upload_id, parts)
    except Exception:
        abort_multipart_upload(target, upload_id)
        raise


def _versions_under(prefix: str) -> Iterator[dict[str, str]]:
    paginator = aws.s3().get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=settings.bucket, Prefix=prefix):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            yield {"Key": entry["Key"], "VersionId": entry["VersionId"]}


def delete_everything_under(prefix: str) -> None:
    """Delete every version and delete marker of every object under `prefix`."""
    batch: list[dict[str, str]] = []
    for entry in _versions_under(prefix):
        batch.append(entry)
        if len(batch) == DELETE_BATCH:
            _delete_batch(batch)
            batch = []
    if batch:
        _delete_batch(batch)


def _delete_batch(objects: list[dict[str, str]]) -> None:
    aws.s3().delete_objects(Bucket=settings.bucket, Delete={"Objects": objects, "Quiet": True})


def bucket_is_reachable() -> bool:
    try:
        aws.s3().head_bucket(Bucket=settings.bucket)
    except (ClientError, BotoCoreError):
        return False
    return True
