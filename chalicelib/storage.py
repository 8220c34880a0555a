"""The versioned S3 bucket: object keys, presigned URLs and bulk deletion.

Every object key is built here (`project_prefix`, `file_key`, `thumbnail_key`), so the layout has
one home. Bytes of project files never pass through the API when presigned URLs can carry them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from . import aws
from .config import settings

DELETE_BATCH = 1000


def project_prefix(project_id: str) -> str:
    return f"projects/{project_id}/"


def file_key(project_id: str, name: str) -> str:
    return f"{project_prefix(project_id)}files/{name}"


def thumbnail_key(project_id: str) -> str:
    return f"{project_prefix(project_id)}meta/thumbnail"


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """A header value safe for any name: an ASCII fallback plus the RFC 5987 UTF-8 form."""
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace('"', "_")
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def put_object(key: str, body: IO[bytes] | bytes, content_type: str) -> str:
    """Store bytes under `key`; the S3 version id of the new version."""
    response = aws.s3().put_object(
        Bucket=settings.bucket, Key=key, Body=body, ContentType=content_type
    )
    return response["VersionId"]


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
    return aws.s3().generate_presigned_url(
        "get_object", Params=params, ExpiresIn=settings.presigned_url_seconds
    )


def delete_version(key: str, version_id: str) -> None:
    aws.s3().delete_object(Bucket=settings.bucket, Key=key, VersionId=version_id)


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
