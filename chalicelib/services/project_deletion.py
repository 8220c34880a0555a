"""Deleting a project: at once for its users, in the background for its data.

`request_deletion` marks the project (`deleting_since`) and frees its name, in one transaction.
From then on the project is 404 for everyone, and nothing can be committed to it: every write
that adds to a project (a file version, a thumbnail, a collaborator, an upload session) checks
`models.projects.is_live()` in its own conditional write or transaction, so an upload that was already running
fails at its commit and removes what it stored (its S3 version, its quota reservation).

`purge` then removes the data, in a background task (`chalicelib.adapters.background`; a large project
cannot be emptied within API Gateway's 29 s): open upload sessions, collaborators, its jobs,
deltas and what goes with them, the file items (each batch deleted in one transaction that
lowers the owner's storage counter by exactly the bytes those items held), every S3 object
version under the project's prefix, and last the project item. Jobs not done yet are retired
first, so the owner's count of jobs waiting or running (its job limit) gets theirs back. Each
step can run again, so an interrupted purge is finished by the next run. A job still running
on the project fails when it tries to commit (the project is not live any more).
"""

from __future__ import annotations

import contextlib

from botocore.exceptions import ClientError
from pynamodb.exceptions import DeleteError, DoesNotExist, TransactWriteError

from chalicelib.adapters import background, storage
from chalicelib.errors import Conflict
from chalicelib.models import (
    ClientFeaturePk,
    Collaborator,
    Delta,
    Job,
    JobLease,
    ListCount,
    Project,
    ProjectFile,
    ProjectName,
    UploadSession,
    User,
)
from chalicelib.models.base import Transaction, utcnow
from chalicelib.models.counts import count_id
from chalicelib.models.jobs import JobType
from chalicelib.models.projects import is_live
from chalicelib.services import jobs, uploads

FILE_BATCH = 25  # file items per transaction (with the two counters: far below DynamoDB's 100)
MAX_ATTEMPTS = 20


def request_deletion(project: Project) -> None:
    """Mark the project deleted and free its name now; its data goes in the background."""
    tx = Transaction()
    try:
        with tx:
            tx.update(
                project,
                actions=[Project.deleting_since.set(utcnow())],
                condition=is_live() & (Project.name == project.name)
                & (Project.owner_key == project.owner_key),
                label="project",
            )
            tx.delete(ProjectName(ProjectName.key_for(project.owner_key, project.name)))
    except TransactWriteError as error:
        if "project" in tx.failed(error):
            raise Conflict("The project was changed or deleted meanwhile; retry.") from None
        raise
    background.start(purge, project_id=project.id)


@background.task
def purge(project_id: str) -> None:
    """Remove everything of a project marked for deletion (never of a live one)."""
    try:
        project = Project.get(project_id, consistent_read=True)
    except DoesNotExist:
        return
    if project.deleting_since is None:
        return
    _drop_upload_sessions(project)
    _retire_jobs(project)
    _delete_counts(project)
    for model, items in (
        (Collaborator, Collaborator.query(project.id, consistent_read=True)),
        (Delta, Delta.query(project.id, consistent_read=True)),
        (ClientFeaturePk, ClientFeaturePk.query(project.id, consistent_read=True)),
        (Job, Job.by_project.query(project.id)),
        (JobLease, JobLease.query(project.id, consistent_read=True)),
    ):
        with model.batch_write() as batch:
            for item in items:
                batch.delete(item)
    _delete_files(project)
    storage.delete_everything_under(storage.project_prefix(project.id))
    with contextlib.suppress(DeleteError):
        project.delete(condition=Project.deleting_since.exists())


def _retire_jobs(project: Project) -> None:
    """Jobs not done yet leave the counts they raised (their owner's outlives the project);
    a worker finishing one later finds it retired, and lowers nothing again."""
    for job in Job.by_project.query(project.id):
        if job.active_partition is not None:
            jobs.retire(job)


def _delete_counts(project: Project) -> None:
    """The counters of the project's job and delta lists (before the deltas, which name their
    deltafiles)."""
    deltafiles = {delta.deltafile_id for delta in Delta.in_order.query(
        project.id, attributes_to_get=["project_id", "id", "seq", "deltafile_id"])}
    list_ids = [count_id("jobs", project.id), count_id("deltas", project.id)]
    list_ids += [count_id("jobs", project.id, job_type) for job_type in JobType]
    list_ids += [count_id("deltafile", project.id, deltafile) for deltafile in sorted(deltafiles)]
    with ListCount.batch_write() as batch:
        for list_id in list_ids:
            batch.delete(ListCount(list_id))


def _drop_upload_sessions(project: Project) -> None:
    """Abort the uploads, with the quota they hold. Completions in progress too: one that was
    cut off would hold its quota for good (no retry reaches a deleted project); one still running
    cannot commit to a project being deleted, and finds its session gone (uploads.discard gives
    the quota back once, whoever comes first)."""
    for session in UploadSession.by_project.query(project.id):
        with contextlib.suppress(ClientError):
            storage.abort_multipart_upload(session.s3_key, session.s3_upload_id)
        uploads.discard(session, project.owner_key)


def _delete_files(project: Project) -> None:
    """Delete the file items in batches, each with the owner's and project's counters lowered
    by the bytes its items held, so the counters follow exactly what is removed."""
    failures = 0
    while items := list(ProjectFile.query(project.id, consistent_read=True, limit=FILE_BATCH)):
        freed = sum(item.stored_bytes for item in items)
        tx = Transaction()
        try:
            with tx:
                for item in items:
                    tx.delete(item)
                tx.update(User(project.owner_key), actions=[User.storage_used_bytes.add(-freed)])
                tx.update(Project(project.id), actions=[Project.file_storage_bytes.add(-freed)],
                          condition=Project.deleting_since.exists())
        except TransactWriteError:
            failures += 1  # another run of the purge got there first: read the items again
            if failures >= MAX_ATTEMPTS:
                raise
