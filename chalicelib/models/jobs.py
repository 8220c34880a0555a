from __future__ import annotations

from enum import StrEnum

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection

from chalicelib.models.base import Table, TableMeta, utcnow

ACTIVE_PARTITION = "active"


class JobType(StrEnum):
    PACKAGE = "package"
    DELTA_APPLY = "delta_apply"
    PROCESS_PROJECTFILE = "process_projectfile"


class JobStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"


WAITING = (JobStatus.PENDING, JobStatus.QUEUED)
FINAL = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED)


class JobsByProject(GlobalSecondaryIndex):
    """A project's jobs, oldest first: `GET jobs/?project_id=`."""

    class Meta:
        index_name = "by-project"
        projection = AllProjection()

    project_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class JobsOfType(GlobalSecondaryIndex):
    """A project's jobs of one type, oldest first: `GET jobs/?project_id=&type=` (`project_and_type`
    is `<project id>#<type>`)."""

    class Meta:
        index_name = "by-project-type"
        projection = AllProjection()

    project_and_type = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


def project_and_type(project_id: str, job_type: str) -> str:
    return f"{project_id}#{job_type}"


class ActiveJobs(GlobalSecondaryIndex):
    """Sparse: only jobs not yet done carry `active_partition`; their sort key starts with the
    project id. The package dedup and "one job waiting per project" read one project's slice;
    the sweeper reads them all (a handful, never the table)."""

    class Meta:
        index_name = "active"
        projection = KeysOnlyProjection()

    active_partition = UnicodeAttribute(hash_key=True)
    active_sort = UnicodeAttribute(range_key=True)


class PackageFile(MapAttribute):
    name = UnicodeAttribute()
    size = NumberAttribute()
    md5sum = UnicodeAttribute()
    sha256 = UnicodeAttribute()


class Job(Table):
    """A background job. Its log and feedback live in S3 (`storage.job_key`), its package files
    too (`storage.package_key`); the item holds what lists and decisions need."""

    class Meta(TableMeta):
        table = "jobs"

    id = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    type = UnicodeAttribute()
    project_and_type = UnicodeAttribute(null=True)  # see JobsOfType
    status = UnicodeAttribute(default=JobStatus.PENDING)
    created_by = UnicodeAttribute()  # username
    created_by_key = UnicodeAttribute()
    created_at = UTCDateTimeAttribute(default=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    overwrite_conflicts = BooleanAttribute(null=True)  # delta_apply: the project's setting when created
    # Set while the job is not done (including a finished job whose results are still being
    # recorded); removed at the very end. See ActiveJobs.
    active_partition = UnicodeAttribute(null=True)
    active_sort = UnicodeAttribute(null=True)
    has_feedback = BooleanAttribute(default=False)
    has_output = BooleanAttribute(default=False)
    error = UnicodeAttribute(null=True)  # one line: why it failed
    package_files = ListAttribute(of=PackageFile, null=True)
    attempts = NumberAttribute(default=0)
    # The `list-counts` item of the owner's jobs not done that this job raised (the owner's when
    # it was created): retiring the job lowers exactly that one, whoever owns the project then.
    owner_count_id = UnicodeAttribute(null=True)

    by_project = JobsByProject()
    of_type = JobsOfType()
    active = ActiveJobs()

    @property
    def is_final(self) -> bool:
        return self.status in FINAL


class JobLease(Table):
    """At most one job runs per project: the worker that holds a project's lease runs its job
    and renews the lease while it does; a lease not renewed (its worker died) lapses."""

    class Meta(TableMeta):
        table = "job-leases"

    project_id = UnicodeAttribute(hash_key=True)
    job_id = UnicodeAttribute()
    worker = UnicodeAttribute()
    expires_at = UTCDateTimeAttribute()
