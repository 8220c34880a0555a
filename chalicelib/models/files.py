from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.attributes import (
    Attribute,
    BooleanAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.constants import STRING

from chalicelib.models.base import Table, TableMeta, utcnow
from chalicelib.models.shapes import compact_json, file_versions

# The shape of the stored `listed` JSON (shapes.FileVersionsOut). A change of that shape bumps
# it: items of another form are then listed through the model until their next change.
LISTED_FORM = 1


@dataclass
class FileVersion:
    """One upload of a file: the bytes are S3 version `s3_version_id` of the file's key."""

    version_id: str
    s3_version_id: str
    size: int
    md5sum: str
    sha256: str
    uploaded_at: datetime
    uploaded_by: str | None = None


class StoredVersions(Attribute[list[FileVersion]]):
    """A file's versions (oldest first) as one string of three lines, each a JSON value:
    1. the form of the second line: LISTED_FORM when it was written;
    2. what the files list shows of the versions (shapes.FileVersionsOut: the latest one's size
       and checksums, and every version newest first), which the list splices in unparsed;
    3. what only the server needs, in the same order: `[s3_version_id, uploaded_by]` each.

    Why one string: a page of the files list then costs one value per file instead of about
    eight per version, in DynamoDB's response, in its parsing and in its rendering. (Compact
    JSON never holds a raw newline.) Items written before, with a list of typed maps, are read.
    """

    attr_type = STRING

    def get_value(self, value: dict[str, Any]) -> dict[str, Any]:
        return value  # the string, or an older item's list: `deserialize` reads both

    def serialize(self, versions: list[FileVersion]) -> str:
        if not versions:
            raise ValueError("A file is stored with at least one version.")
        listed = file_versions(versions).dump()
        sources = [[version.s3_version_id, version.uploaded_by] for version in reversed(versions)]
        return "\n".join((str(LISTED_FORM), compact_json(listed), compact_json(sources)))

    def deserialize(self, value: dict[str, Any]) -> list[FileVersion]:
        if "L" in value:
            return [_typed_version(element["M"]) for element in value["L"]]
        _, listed, sources = value["S"].split("\n")
        return [FileVersion(version_id=shown["version_id"], s3_version_id=s3_version_id,
                            size=int(shown["size"]), md5sum=shown["md5sum"], sha256=shown["sha256"],
                            uploaded_at=datetime.fromisoformat(shown["uploaded_at"]),
                            uploaded_by=uploaded_by)
                for shown, (s3_version_id, uploaded_by)
                in zip(reversed(json.loads(listed)["versions"]), reversed(json.loads(sources)), strict=True)]


def _typed_version(raw: dict[str, Any]) -> FileVersion:
    """A version as items written before StoredVersions hold it: a map of typed values."""
    by = raw.get("uploaded_by")
    return FileVersion(
        version_id=raw["version_id"]["S"], s3_version_id=raw["s3_version_id"]["S"],
        size=int(raw["size"]["N"]), md5sum=raw["md5sum"]["S"], sha256=raw["sha256"]["S"],
        uploaded_at=_datetime(raw["uploaded_at"]),
        uploaded_by=None if by is None or "NULL" in by else by["S"],
    )


def _datetime(value: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(value["S"])  # UTCDateTimeAttribute's `...%f+0000`


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
    versions = StoredVersions(default=list)
    lock = VersionAttribute()

    @property
    def latest(self) -> FileVersion:
        return self.versions[-1]

    @property
    def stored_bytes(self) -> int:
        return sum(version.size for version in self.versions)


@dataclass(frozen=True)
class ListedFile:
    """A `ProjectFile` as the files list shows it, read straight from the item's DynamoDB JSON
    without parsing its versions: they are listed as the item stores them (`listed`).
    Read-only: changes go through `ProjectFile`."""

    name: str
    uploaded_at: datetime
    is_attachment: bool
    listed: str  # shapes.FileVersionsOut as JSON


def listed_file(raw: dict[str, Any]) -> ListedFile | ProjectFile:
    """What the files list needs of an item: a `ListedFile`, or the model for an item stored in
    another form (a list of maps, or an older LISTED_FORM)."""
    stored = raw.get("versions", {}).get("S")
    form, listed, _ = stored.split("\n", 2) if stored else (None, None, None)
    if form != str(LISTED_FORM):
        return ProjectFile.from_raw_data(raw)
    return ListedFile(name=raw["name"]["S"], uploaded_at=_datetime(raw["uploaded_at"]),
                      is_attachment=raw.get("is_attachment", {}).get("BOOL", False), listed=listed)
