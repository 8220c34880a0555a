from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)

from .base import Table, TableMeta, utcnow


class FileVersion(MapAttribute):
    """One upload of a file: the bytes are S3 version `s3_version_id` of the file's key."""

    version_id = UnicodeAttribute()
    s3_version_id = UnicodeAttribute()
    size = NumberAttribute()
    md5sum = UnicodeAttribute()
    sha256 = UnicodeAttribute()
    uploaded_at = UTCDateTimeAttribute()
    uploaded_by = UnicodeAttribute(null=True)


class ProjectFile(Table):
    """A project file and its kept versions, oldest first, in one item.

    Listing a project's files is one Query. The number of versions is bounded by the retention
    setting, so the item stays far below DynamoDB's 400 KB. `lock` makes concurrent uploads of
    the same path retry instead of overwriting each other's version.
    """

    class Meta(TableMeta):
        table = "files"

    project_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute(range_key=True)
    is_attachment = BooleanAttribute(default=False)
    uploaded_at = UTCDateTimeAttribute(default=utcnow)
    uploaded_by = UnicodeAttribute(null=True)
    versions = ListAttribute(of=FileVersion, default=list)
    lock = VersionAttribute()

    @property
    def latest(self) -> FileVersion:
        return self.versions[-1]

    @property
    def stored_bytes(self) -> int:
        return sum(version.size for version in self.versions)


@dataclass(frozen=True)
class ListedVersion:
    """A `FileVersion` as a list shows it (read-only)."""

    version_id: str
    s3_version_id: str
    size: int
    md5sum: str
    sha256: str
    uploaded_at: datetime
    uploaded_by: str | None


@dataclass(frozen=True)
class ListedFile:
    """A `ProjectFile` as a list shows it: read straight from the item's DynamoDB JSON, without
    PynamoDB's attribute machinery (most of the cost of listing thousands of files of ten
    versions). Read-only: changes go through `ProjectFile`."""

    project_id: str
    name: str
    is_attachment: bool
    uploaded_at: datetime
    uploaded_by: str | None
    versions: tuple[ListedVersion, ...]

    @property
    def latest(self) -> ListedVersion:
        return self.versions[-1]

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> ListedFile:
        return cls(
            project_id=raw["project_id"]["S"], name=raw["name"]["S"],
            is_attachment=raw.get("is_attachment", {}).get("BOOL", False),
            uploaded_at=_datetime(raw["uploaded_at"]), uploaded_by=_text(raw.get("uploaded_by")),
            versions=tuple(_version(value["M"]) for value in raw.get("versions", {}).get("L", [])),
        )


def _text(value: dict[str, Any] | None) -> str | None:
    return None if value is None or "NULL" in value else value["S"]


def _datetime(value: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(value["S"])  # UTCDateTimeAttribute's `...%f+0000`


def _version(raw: dict[str, Any]) -> ListedVersion:
    return ListedVersion(
        version_id=raw["version_id"]["S"], s3_version_id=raw["s3_version_id"]["S"],
        size=int(raw["size"]["N"]), md5sum=raw["md5sum"]["S"], sha256=raw["sha256"]["S"],
        uploaded_at=_datetime(raw["uploaded_at"]), uploaded_by=_text(raw.get("uploaded_by")),
    )
