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

from .base import Table, TableMeta, utcnow

PUBLIC_PARTITION = "public"


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

    by_owner = ProjectsByOwner()
    public = PublicProjects()


def is_live():
    """The condition every write that adds to a project checks, in its own conditional write or
    transaction: the project exists and is not being deleted (chalicelib.project_deletion)."""
    return Project.id.exists() & Project.deleting_since.does_not_exist()


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
