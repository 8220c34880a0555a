from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from .base import Table, TableMeta, utcnow


class CollaborationsByUser(GlobalSecondaryIndex):
    """The projects a user collaborates on: `GET projects/`."""

    class Meta:
        index_name = "by-collaborator"
        projection = AllProjection()

    collaborator_key = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute(range_key=True)


class Collaborator(Table):
    class Meta(TableMeta):
        table = "collaborators"

    project_id = UnicodeAttribute(hash_key=True)
    collaborator_key = UnicodeAttribute(range_key=True)
    collaborator = UnicodeAttribute()
    role = UnicodeAttribute()
    created_by = UnicodeAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(default=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)

    by_collaborator = CollaborationsByUser()
