"""Jobs: QGIS work done in the background, one job at a time per project.

A job is written `pending` with the project's `active_jobs` counter raised (the project shows
`busy`), announced on the queue (`queued`), claimed by a worker that holds the project's lease
(`started`), and completed (`finished` or `failed`) in one transaction with what it produced.
It leaves the active index, and the counter drops, only once everything it produced is recorded
(`retire`). A worker that dies leaves a lease that lapses; the sweeper then fails its job, and
the job's own kind decides what to put back (deltas become pending again).

The API creates jobs (`create`, `trigger`): a request for a job gets the job of that type
already waiting, if any, and a new job only while neither its project nor the project's owner
has as many jobs not done as the settings allow (`_count_in`). The worker
(job_containers.worker) is the second entry point and runs the rest.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, TransactWriteError, UpdateError

from chalicelib.adapters import job_queue, storage
from chalicelib.config import settings
from chalicelib.errors import NoQgisProject, ObjectNotFound, PermissionDenied, TooManyJobs
from chalicelib.models import Job, JobLease, ListCount, Project
from chalicelib.models.base import Transaction, utcnow
from chalicelib.models.counts import count_id
from chalicelib.models.jobs import ACTIVE_PARTITION, WAITING, JobStatus, JobType, project_and_type
from chalicelib.models.listing import Listing
from chalicelib.models.projects import ProjectType, is_live
from chalicelib.observability import logger
from chalicelib.rules.permissions import Action, require
from chalicelib.services.auth import Caller
from chalicelib.services.inputs import JobCreate, JobListQuery
from chalicelib.services.projects import get_project

FEEDBACK = "feedback.json"
FEEDBACK_SUMMARY = "feedback-summary.json"  # beside a report too large to be answered whole
OUTPUT = "output.log"
# What a job item keeps of its log; the whole log is in S3.
ERROR_CHARS = 500
# A report larger than this (its JSON) is answered as its summary and a link to the whole:
# Lambda answers at most 6 MB, and a package job reports every layer with its fields, twice
# over and again in `steps[].returns` (about 10 MB for 800 layers).
MAX_ANSWERED_FEEDBACK_BYTES = 1024 * 1024
# What a summary keeps of the report, each text at most SUMMARY_TEXT_CHARS long.
SUMMARY_KEYS = ("feedback_version", "workflow_id", "workflow_name", "workflow_version",
                "error", "error_type", "error_class", "error_stack")
SUMMARY_TEXT_CHARS = 16_384


def _active_sort(project_id: str, created_at: datetime, job_id: str) -> str:
    return f"{project_id}#{created_at.isoformat()}#{job_id}"


# --- Created by the API ---------------------------------------------------------------------


def _jobs_in_flight(project_id: str) -> list[Job]:
    """The project's jobs that are not done yet, oldest first (a handful at most)."""
    keys = Job.active.query(ACTIVE_PARTITION, Job.active_sort.startswith(f"{project_id}#"))
    return sorted(Job.batch_get([key.id for key in keys]), key=lambda job: job.created_at)


def _job_to_reuse(project_id: str, job_type: JobType, *, force: bool = False) -> Job | None:
    """What a request for a `job_type` job gets instead of a new one: the newest such job still
    waiting (it will see everything there is when it starts), or for a package without `force`
    also one running (QFieldCloud's rule). A job running when data changed needs a new one."""
    statuses = (*WAITING, JobStatus.STARTED) if job_type == JobType.PACKAGE and not force else WAITING
    found = [job for job in _jobs_in_flight(project_id) if job.type == job_type and job.status in statuses]
    return found[-1] if found else None


def _owner_count_id(owner_key: str) -> str:
    return count_id("active-jobs", owner_key)


def _below(attribute, limit: int):
    """The condition that a counter is below `limit` (-1: no limit); a counter not written yet
    is zero."""
    if limit < 0:
        return None
    return attribute.does_not_exist() | (attribute < limit)


def _new_job(caller: Caller, project: Project, job_type: JobType, *, limited: bool) -> Job:
    now = utcnow()
    job = Job(
        str(uuid.uuid4()),
        project_id=project.id,
        type=job_type,
        status=JobStatus.PENDING,
        created_by=caller.username,
        created_by_key=caller.key,
        created_at=now,
        updated_at=now,
        active_partition=ACTIVE_PARTITION,
        owner_count_id=_owner_count_id(project.owner_key),
    )
    job.active_sort = _active_sort(project.id, now, job.id)
    job.project_and_type = project_and_type(project.id, job_type)
    if job_type == JobType.DELTA_APPLY:
        job.overwrite_conflicts = project.overwrite_conflicts
    _count_in(job, project, limited)
    try:
        job_queue.send(job.id)
    except Exception:
        logger.exception("Could not queue a job", extra={"job_id": job.id})
        fail(job, "The job could not be queued; please try again.")
        raise
    with contextlib.suppress(UpdateError):  # unless a worker took it already
        job.update(actions=[Job.status.set(JobStatus.QUEUED), Job.updated_at.set(utcnow())],
                   condition=Job.status == JobStatus.PENDING)
    return job


def _count_in(job: Job, project: Project, limited: bool) -> None:
    """Write the new job with the counts of its project's and owner's jobs not done, and of the
    project's job lists, in one transaction; `limited`: only if neither count is at its limit
    (else 429 `too_many_jobs`), so that concurrent requests cannot pass a limit together."""
    per_project = settings.max_active_jobs_per_project if limited else -1
    per_owner = settings.max_active_jobs_per_owner if limited else -1
    project_condition = is_live()
    if (below := _below(Project.active_jobs, per_project)) is not None:
        project_condition &= below
    tx = Transaction()
    tx.save(job, condition=Job.id.does_not_exist())
    tx.update(project, actions=[Project.active_jobs.add(1)], condition=project_condition, label="project")
    tx.update(ListCount(job.owner_count_id), actions=[ListCount.count.add(1)],
              condition=_below(ListCount.count, per_owner), label="owner")
    ListCount.add(tx, count_id("jobs", project.id), 1)
    ListCount.add(tx, count_id("jobs", project.id, job.type), 1)
    try:
        tx.commit()
    except TransactWriteError as exc:
        failed = tx.failed(exc)
        if "owner" in failed:
            raise TooManyJobs(
                f"The projects of `{project.owner}` have {per_owner} jobs waiting or running, the most "
                f"they may have; try again once some are done.") from None
        if "project" in failed and (per_project < 0 or _was_deleted(project.id)):
            raise ObjectNotFound(f"There is no project `{project.id}`.") from None
        if "project" in failed:
            raise TooManyJobs(
                f"This project has {per_project} jobs waiting or running, the most it may have; try "
                f"again once some are done.") from None
        raise


def _was_deleted(project_id: str) -> bool:
    try:
        return Project.get(project_id, consistent_read=True).deleting_since is not None
    except DoesNotExist:
        return True


def _required_action(job_type: str) -> Action:
    return Action.CREATE_PACKAGE_JOB if job_type == JobType.PACKAGE else Action.CREATE_JOB


def create(caller: Caller, data: JobCreate) -> tuple[Job, bool]:
    """`POST jobs/`: the job of that type already waiting (for a package without `force`, also
    one running), then `False`: nothing was created; else a new job, within the limits."""
    project = get_project(data.project_id)
    job_type = JobType(data.type)
    require(caller.user, project, _required_action(job_type))
    if job_type == JobType.PACKAGE and project.project_type == ProjectType.TEMPLATE:
        raise PermissionDenied("Template projects cannot be packaged.")
    existing = _job_to_reuse(project.id, job_type, force=data.force)
    if existing is not None:
        return existing, False
    if not project.the_qgis_file_name:
        raise NoQgisProject()
    return _new_job(caller, project, job_type, limited=True), True


def trigger(caller: Caller, project: Project, job_type: JobType, *, limited: bool = False) -> Job:
    """A job of `job_type` for the project, unless one is already waiting. `limited`: a job a
    user asks for, which the limits refuse; one that stored data needs (an upload's, the next
    delta_apply of the worker) is never refused, and at most one per type waits anyway."""
    return _job_to_reuse(project.id, job_type) or _new_job(caller, project, job_type, limited=limited)


def list_jobs(caller: Caller, query: JobListQuery) -> Listing[Job]:
    """The project's jobs (of one type, if asked), oldest first."""
    project = get_project(query.project_id)
    require(caller.user, project, Action.READ_JOBS)
    if query.type:
        return Listing(Job, project_and_type(project.id, query.type), index=Job.of_type,
                       total=ListCount.of(count_id("jobs", project.id, query.type)))
    return Listing(Job, project.id, index=Job.by_project, total=ListCount.of(count_id("jobs", project.id)))


@dataclass(frozen=True)
class JobReport:
    """A job with its report as JSON text (`feedback_json`, the whole or its summary) and its
    log; `feedback_url` links to the whole report when `feedback_json` is its summary."""

    job: Job
    feedback_json: str | None
    output: str | None
    feedback_url: str | None = None


def get_job(caller: Caller, job_id: str) -> JobReport:
    try:
        job = Job.get(job_id)
    except DoesNotExist:
        raise ObjectNotFound(f"There is no job `{job_id}`.") from None
    require(caller.user, get_project(job.project_id), Action.READ_JOBS)
    feedback, feedback_url = _answered_feedback(job)
    return JobReport(job, feedback, _text(job, OUTPUT) if job.has_output else None, feedback_url)


def _answered_feedback(job: Job) -> tuple[str | None, str | None]:
    """The report as `GET jobs/<id>/` answers it, as the JSON text stored (never parsed, so any
    report can be answered): whole up to MAX_ANSWERED_FEEDBACK_BYTES, else its summary (saved
    beside it) and a presigned link to the whole, valid as long as download links. A large
    report is never read here, but for one saved without a summary."""
    key = storage.job_key(job.project_id, job.id, FEEDBACK)
    stored = storage.get_if_small(key, MAX_ANSWERED_FEEDBACK_BYTES) if job.has_feedback else None
    if stored is None:
        return None, None
    if stored.data is not None:
        return stored.data.decode("utf-8"), None
    summary = _text(job, FEEDBACK_SUMMARY) or json.dumps(feedback_summary(feedback_of(job) or {}))
    return summary, storage.presigned_get(key, content_type="application/json")


def feedback_summary(feedback: dict[str, Any]) -> dict[str, Any]:
    """What a report says but what its steps returned (`steps[].returns`, and `outputs`, which
    repeats them): its workflow, each step's id, name and stage, and its error."""

    def short(value: Any) -> Any:
        if isinstance(value, str):
            return value[:SUMMARY_TEXT_CHARS]
        return value if value is None or isinstance(value, bool | int | float) else None

    summary = {key: short(feedback[key]) for key in SUMMARY_KEYS if key in feedback}
    steps = feedback.get("steps") if isinstance(feedback.get("steps"), list) else []
    summary["steps"] = [{name: short(step.get(name)) for name in ("id", "name", "stage")}
                        for step in steps if isinstance(step, dict)]
    return summary


def _text(job: Job, name: str) -> str | None:
    data = storage.get_bytes(storage.job_key(job.project_id, job.id, name))
    return None if data is None else data.decode("utf-8", "replace")


def feedback_of(job: Job) -> dict[str, Any] | None:
    text = _text(job, FEEDBACK) if job.has_feedback else None
    return json.loads(text) if text else None


# --- Run by the worker ----------------------------------------------------------------------


def find(job_id: str) -> Job | None:
    try:
        return Job.get(job_id, consistent_read=True)
    except DoesNotExist:
        return None


def acquire_lease(job: Job, worker: str, seconds: int) -> bool:
    """Take the project's lease for `job`: free, lapsed, or already this job's."""
    now = utcnow()
    lease = JobLease(job.project_id, job_id=job.id, worker=worker,
                     expires_at=now + timedelta(seconds=seconds))
    free = JobLease.project_id.does_not_exist() | (JobLease.expires_at < now) | (JobLease.job_id == job.id)
    try:
        lease.save(condition=free)
    except PutError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def renew_lease(job: Job, worker: str, seconds: int) -> bool:
    """Keep the lease for `seconds` more; False if it was lost (it lapsed and was taken)."""
    try:
        JobLease(job.project_id).update(
            actions=[JobLease.expires_at.set(utcnow() + timedelta(seconds=seconds))],
            condition=(JobLease.job_id == job.id) & (JobLease.worker == worker),
        )
    except UpdateError:
        return False
    return True


def release_lease(job: Job) -> None:
    with contextlib.suppress(DeleteError):  # unless it lapsed and another job holds it now
        JobLease(job.project_id).delete(condition=JobLease.job_id == job.id)


def _lease_is_alive(job: Job) -> bool:
    try:
        lease = JobLease.get(job.project_id, consistent_read=True)
    except DoesNotExist:
        return False
    return lease.job_id == job.id and lease.expires_at > utcnow()


def claim(job: Job) -> bool:
    """Mark a waiting job started (the caller holds its project's lease); False if it is not
    waiting any more (a redelivered message, or another worker got it)."""
    now = utcnow()
    try:
        job.update(
            actions=[Job.status.set(JobStatus.STARTED), Job.started_at.set(now),
                     Job.updated_at.set(now), Job.attempts.add(1)],
            condition=Job.status.is_in(*WAITING),
        )
    except UpdateError:
        return False
    return True


def save_report(job: Job, feedback: dict[str, Any] | None, output: str | None) -> None:
    """Put the job's feedback and log in S3 (before the job is completed, so that a completed
    job always has them), and the feedback's summary when it is too large to be answered."""
    if feedback is not None:
        text = json.dumps(feedback)
        storage.put_object(storage.job_key(job.project_id, job.id, FEEDBACK), text.encode(),
                           "application/json")
        if len(text) > MAX_ANSWERED_FEEDBACK_BYTES:
            storage.put_object(storage.job_key(job.project_id, job.id, FEEDBACK_SUMMARY),
                               json.dumps(feedback_summary(feedback)).encode(), "application/json")
    if output is not None:
        storage.put_object(storage.job_key(job.project_id, job.id, OUTPUT),
                           output.encode("utf-8", "replace"), "text/plain; charset=utf-8")


def completion(tx: Transaction, job: Job, status: JobStatus, *, error: str | None = None,
               reported: tuple[bool, bool] = (True, True), extra: list | None = None) -> None:
    """Add the job's completion to `tx`: it commits only if the job is still started, so a job
    completes once. `reported`: whether its feedback and output were saved."""
    now = utcnow()
    actions = [Job.status.set(status), Job.finished_at.set(now), Job.updated_at.set(now),
               Job.has_feedback.set(reported[0]), Job.has_output.set(reported[1]), *(extra or [])]
    if error:
        actions.append(Job.error.set(error[:ERROR_CHARS]))
    tx.update(job, actions=actions, condition=Job.status == JobStatus.STARTED, label="job")


def complete(job: Job, status: JobStatus, *, error: str | None = None,
             also: Callable[[Transaction], None] | None = None, extra: list | None = None) -> bool:
    """Complete a started job, together with what `also` adds to the same transaction; False
    if it was completed already (by the sweeper, after this worker was thought dead)."""
    tx = Transaction()
    completion(tx, job, status, error=error, extra=extra)
    if also is not None:
        also(tx)
    try:
        tx.commit()
    except TransactWriteError as exc:
        if "job" in tx.failed(exc):
            return False
        raise
    job.refresh(consistent_read=True)
    return True


def fail(job: Job, reason: str) -> bool:
    """Mark a job that is not done failed with `reason` (also as its log), and retire it."""
    now = utcnow()
    save_report(job, None, reason)
    try:
        job.update(
            actions=[Job.status.set(JobStatus.FAILED), Job.finished_at.set(now),
                     Job.updated_at.set(now), Job.error.set(reason[:ERROR_CHARS]),
                     Job.has_output.set(True)],
            condition=Job.status.is_in(*WAITING, JobStatus.STARTED),
        )
    except UpdateError:
        return False
    retire(job)
    return True


def retire(job: Job) -> None:
    """The job is done and recorded: it leaves the active index, its project's count and the
    count of the owner it was counted for, all once."""
    tx = Transaction()
    _leave(tx, job)
    tx.update(Project(job.project_id), actions=[Project.active_jobs.add(-1)],
              condition=Project.id.exists() & (Project.active_jobs > 0))
    try:
        tx.commit()
    except TransactWriteError as exc:
        if "job" in tx.failed(exc):
            return  # retired already
        # The project is gone (deleted meanwhile): the job leaves the rest alone.
        tx = Transaction()
        _leave(tx, job)
        try:
            tx.commit()
        except TransactWriteError as exc:
            if "job" not in tx.failed(exc):
                raise


def _leave(tx: Transaction, job: Job) -> None:
    """Take the job out of the active index, and its owner's count, unless it is out already."""
    tx.update(job, actions=[Job.active_partition.remove(), Job.active_sort.remove()],
              condition=Job.active_partition.exists(), label="job")
    if job.owner_count_id:  # None on jobs created before owners' counts
        ListCount.add(tx, job.owner_count_id, -1)


def in_flight() -> Iterator[Job]:
    """Every job not yet done, in all projects (the sweeper's view; a handful at a time)."""
    ids = [key.id for key in Job.active.query(ACTIVE_PARTITION)]
    yield from Job.batch_get(ids)


def announce_waiting(older_than_seconds: float) -> int:
    """Send a message again for every waiting job not touched for `older_than_seconds`: one
    whose message was lost (the local stand-in keeps no queue across restarts) starts anyway; a
    duplicate message does nothing (a job is claimed once). How many were announced."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    count = 0
    for job in in_flight():
        if job.status in WAITING and job.updated_at <= cutoff:
            job_queue.send(job.id)
            job.update(actions=[Job.updated_at.set(utcnow())])
            count += 1
    return count


def is_abandoned(job: Job) -> bool:
    """A started (or completed but unrecorded) job whose worker's lease has lapsed."""
    return job.status not in WAITING and not _lease_is_alive(job)
