from __future__ import annotations

from enum import StrEnum

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib.models.base import Table, TableMeta, utcnow

PUBLIC_PARTITION = "public"
# Below every character of a username key or a project name (inputs.py allows neither control
# characters), so `list_order` strings compare as the tuples they are made of.
ORDER_SEPARATOR = "\x00"


def list_order_of(is_featured: bool, owner_key: str, name: str, project_id: str) -> str:
    """The default order of project lists as one string: featured first, then owner, name (any
    case) and id. DynamoDB compares strings by their UTF-8 bytes, i.e. by code point, as Python
    does, so an index on it serves the order `projects.order()` gives."""
    return ORDER_SEPARATOR.join((("0" if is_featured else "1") + owner_key, name.casefold(), project_id))


class ProjectType(StrEnum):
    REGULAR = "regular"
    TEMPLATE = "template"
    # Set by the name alone: a project named `shared_datasets` holds an owner's shared layers.
    SHARED_DATASETS = "shared_datasets"


class ProjectsByOwner(GlobalSecondaryIndex):
    """An account's own projects, by name: `GET projects/` and the `owner=` filter."""

    class Meta:
        index_name = "by-owner"
        projection = AllProjection()

    owner_key = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute(range_key=True)


class ProjectsByOwnerInOrder(GlobalSecondaryIndex):
    """An account's projects in the default list order: a source of the paged `GET projects/`."""

    class Meta:
        index_name = "by-owner-in-order"
        projection = AllProjection()

    owner_key = UnicodeAttribute(hash_key=True)
    list_order = UnicodeAttribute(range_key=True)


class PublicProjectsInOrder(GlobalSecondaryIndex):
    """Sparse, public projects in the default list order: `projects/public/` and the paged
    `GET projects/?include_public=1`."""

    class Meta:
        index_name = "public-in-order"
        projection = AllProjection()

    public_partition = UnicodeAttribute(hash_key=True)
    list_order = UnicodeAttribute(range_key=True)


class PublicProjects(GlobalSecondaryIndex):
    """Sparse: only public projects carry `public_partition`. `projects/public/`, include_public."""

    class Meta:
        index_name = "public"
        projection = AllProjection()

    public_partition = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class Project(Table):
    class Meta(TableMeta):
        table = "projects"

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    owner = UnicodeAttribute()
    owner_key = UnicodeAttribute()
    owner_is_organization = BooleanAttribute(default=False)
    description = UnicodeAttribute(default="")
    project_type = UnicodeAttribute(default=ProjectType.REGULAR)
    is_public = BooleanAttribute(default=False)
    public_partition = UnicodeAttribute(null=True)
    public_collaborator_role = UnicodeAttribute(default="reader")
    is_featured = BooleanAttribute(default=False)
    is_attachment_download_on_demand = BooleanAttribute(default=False)
    has_restricted_projectfiles = BooleanAttribute(default=False)
    overwrite_conflicts = BooleanAttribute(default=True)
    created_at = UTCDateTimeAttribute(default=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)
    data_last_packaged_at = UTCDateTimeAttribute(null=True)
    data_last_updated_at = UTCDateTimeAttribute(null=True)
    restricted_data_last_updated_at = UTCDateTimeAttribute(null=True)
    file_storage_bytes = NumberAttribute(default=0)
    # How many files the project holds: `X-Total-Count` of `GET files/<id>/`, changed in the
    # transaction that adds or removes a file.
    file_count = NumberAttribute(default=0)
    the_qgis_file_name = UnicodeAttribute(null=True)
    thumbnail_version = UnicodeAttribute(null=True)
    thumbnail_content_type = UnicodeAttribute(null=True)
    # What the last process_projectfile job found (its whole report is that job's feedback);
    # `processing_failed` marks a failed last run.
    details_job_id = UnicodeAttribute(null=True)
    processing_failed = BooleanAttribute(default=False)
    attachment_dirs = ListAttribute(of=UnicodeAttribute, null=True)
    has_online_vector_data = BooleanAttribute(default=False)
    qgis_version = UnicodeAttribute(null=True)
    # The last package job that succeeded: what `packages/<id>/latest/` serves.
    package_job_id = UnicodeAttribute(null=True)
    # Person collaborators (teams not counted): against the owner's plan limit.
    person_collaborators = NumberAttribute(default=0)
    # Jobs created and not yet done: the project is `busy` while this is above zero.
    active_jobs = NumberAttribute(default=0)
    # Set when the project's deletion was asked for: from then on it is gone for the API, no
    # write may be committed to it, and a background task removes its data (project_deletion).
    deleting_since = UTCDateTimeAttribute(null=True)
    # `list_order_of(...)` the fields above, kept by every write that changes them (and copied to
    # the project's collaborator rows as `project_order`); None only on data from before it.
    list_order = UnicodeAttribute(null=True)

    by_owner = ProjectsByOwner()
    public = PublicProjects()
    by_owner_in_order = ProjectsByOwnerInOrder()
    public_in_order = PublicProjectsInOrder()

    def current_list_order(self) -> str:
        return list_order_of(self.is_featured, self.owner_key, self.name, self.id)


def is_live():
    """The condition every write that adds to a project checks, in its own conditional write or
    transaction: the project exists and is not being deleted (services.project_deletion)."""
    return Project.id.exists() & Project.deleting_since.does_not_exist()


def has_list_order(order: str | None):
    """The condition that the project's `list_order` is still `order` (None: has none yet)."""
    return Project.list_order.does_not_exist() if order is None else Project.list_order == order


class ProjectName(Table):
    """Claims `<owner_key>/<name>`: written with the project in one transaction, so two
    concurrent creates (or renames) of the same owner and name cannot both succeed."""

    class Meta(TableMeta):
        table = "project-names"

    owner_and_name = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()

    @staticmethod
    def key_for(owner_key: str, name: str) -> str:
        return f"{owner_key}/{name}"
