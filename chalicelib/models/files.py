from __future__ import annotations

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
