from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib.models.base import Table, TableMeta, utcnow


class CollaborationsByUser(GlobalSecondaryIndex):
    """The projects a user collaborates on: `GET projects/`."""

    class Meta:
        index_name = "by-collaborator"
        projection = AllProjection()

    collaborator_key = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute(range_key=True)


class CollaborationsInOrder(GlobalSecondaryIndex):
    """A person's or a team's rows in their projects' default list order (`project_order`): a
    source of the paged `GET projects/`."""

    class Meta:
        index_name = "by-collaborator-in-order"
        projection = AllProjection()

    collaborator_key = UnicodeAttribute(hash_key=True)
    project_order = UnicodeAttribute(range_key=True)


TEAM_PREFIX = "team:"


def team_collaborator_key(team_id: str) -> str:
    """A team's `collaborator_key`: its id, which a rename does not change."""
    return TEAM_PREFIX + team_id


class Collaborator(Table):
    """A person's or a team's role on a project. A person's row is keyed by the username key, a
    team's by `team:<team id>` (its `collaborator` shows `@<organization>/<team>`)."""

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
    # The project's `list_order`, written with the row and rewritten when the project's changes
    # (projects.update_project); None only on data from before it.
    project_order = UnicodeAttribute(null=True)

    by_collaborator = CollaborationsByUser()
    by_collaborator_in_order = CollaborationsInOrder()

    @property
    def team_id(self) -> str | None:
        key = self.collaborator_key
        return key[len(TEAM_PREFIX):] if key.startswith(TEAM_PREFIX) else None
