"""The shapes the tables store as the API renders them, and the base of every response body.

The files table keeps, with each file, its versions as the files list shows them
(`FileVersionsOut`, rendered once when a version is recorded, spliced into the list unparsed):
`models.files` renders them with `file_versions`, and so do the serializers. Only pydantic here,
no PynamoDB and no other module of ours: the models import it at the top, and so does
`chalicelib.http.outputs`, the home of every other response shape.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema


def utc_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def compact_json(value: Any) -> str:
    """JSON text as the API sends it and the tables store it: no spaces."""
    return json.dumps(value, separators=(",", ":"))


def version_display(uploaded_at: datetime) -> str:
    return "v" + uploaded_at.astimezone(UTC).strftime("%Y%m%d%H%M%S")


Timestamp = Annotated[
    datetime,
    PlainSerializer(utc_timestamp, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-11-23T17:11:25.200902Z"]}),
]
Md5sum = Annotated[str, Field(description="The S3-style ETag with 8 MiB parts: plain MD5 up to 8 MiB, "
                                          "else `md5(part MD5s)-<parts>`")]

class Output(BaseModel):
    """A response body. Unknown fields are refused: a shape changes here or not at all."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class FileVersionOut(Output):
    version_id: str
    size: int
    md5sum: Md5sum
    sha256: str
    last_modified: Timestamp
    uploaded_at: Timestamp
    is_latest: bool
    display: str


class FileVersionsOut(Output):
    """What a file's entry says of its versions: the latest one's size and checksums, and every
    kept version, newest first. The files table stores it with each file (models.files)."""

    size: int
    md5sum: Md5sum
    sha256: str
    last_modified: Timestamp
    versions: list[FileVersionOut]


def file_versions(versions: Sequence[Any]) -> FileVersionsOut:
    """The one filling of FileVersionsOut, from versions oldest first (`models.FileVersion`s):
    the serializers use it, and the files table stores its dump."""
    latest = versions[-1]
    return FileVersionsOut(
        size=int(latest.size), md5sum=latest.md5sum, sha256=latest.sha256, last_modified=latest.uploaded_at,
        versions=[FileVersionOut(
            version_id=version.version_id, size=int(version.size), md5sum=version.md5sum,
            sha256=version.sha256, last_modified=version.uploaded_at, uploaded_at=version.uploaded_at,
            is_latest=version is latest, display=version_display(version.uploaded_at),
        ) for version in reversed(versions)],
    )
