from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib.models.base import Table, TableMeta, utcnow


class UploadsByProject(GlobalSecondaryIndex):
    """A project's uploads in progress: deleting the project removes them too."""

    class Meta:
        index_name = "by-project"
        projection = AllProjection()

    project_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class UploadSession(Table):
    """A presigned multipart upload in progress. An abandoned session expires with its TTL and
    S3 aborts its upload by lifecycle rule; it holds no quota (that is counted at completion)."""

    class Meta(TableMeta):
        table = "upload-sessions"

    upload_id = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    name = UnicodeAttribute()
    s3_key = UnicodeAttribute()
    s3_upload_id = UnicodeAttribute()
    size = NumberAttribute()
    part_size = NumberAttribute()
    created_by = UnicodeAttribute()
    # "open" while parts arrive; "completing" once a client asked to complete (only one at a
    # time). Completion records each step it has done, so that a retry after an interruption
    # (a Lambda timeout) resumes instead of counting the quota twice or losing the object.
    state = UnicodeAttribute(default="open")
    claimed_at = UTCDateTimeAttribute(null=True)
    quota_counted = BooleanAttribute(default=False)
    s3_version_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(default=utcnow)
    expires_at = TTLAttribute()

    by_project = UploadsByProject()
