"""delta_apply, as the worker runs it: the deltas QField pushed (stored by services/deltas.py,
`pending`) applied to the project's data with QGIS.

The job takes the pending deltas when it starts (`take`), the child applies them, and the files
they edited are committed together with the job's completion: an edit is in the data exactly
when its job finished. Each delta's status is then written from the job's report (`record`);
a job that fails puts what it took back (`put_back`), to be applied by the next one, and deltas
that came while it ran get a job of their own (`apply_what_came_meanwhile`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pynamodb.exceptions import PutError

from chalicelib.adapters import storage
from chalicelib.errors import Conflict
from chalicelib.models import ClientFeaturePk, Delta, Job, Project, ProjectFile, User
from chalicelib.models.base import BATCH_GET_LIMIT, BATCH_WRITE_LIMIT, in_chunks, utcnow
from chalicelib.models.deltas import DeltaStatus, client_key
from chalicelib.models.jobs import JobStatus, JobType
from chalicelib.models.shapes import compact_json
from chalicelib.services import files, jobs
from chalicelib.services.auth import Caller
from job_containers import sandbox
from job_containers.workspace import Workspace, download_project, local_path, save_report

# The deltas one job takes; the rest wait for the next job.
MAX_DELTAS_PER_JOB = 1000
TAKEN = "deltas.json"  # which deltas a job took, beside its report
# How the core's per-delta statuses (cores/delta_format.py) become the statuses the API shows.
CORE_STATUSES = {
    "status_applied": DeltaStatus.APPLIED,
    "status_conflict": DeltaStatus.CONFLICT,
    "status_apply_failed": DeltaStatus.NOT_APPLIED,
}
# The client type of the edits a job commits, and of the job that follows it.
WORKER_CLIENT = "worker"


@dataclass(frozen=True)
class Batch:
    """The deltas a job applies, in order, and the server keys of features their clients made."""

    deltas: list[Delta]
    client_pks: dict[str, str]


def run(job: Job, project: Project, workspace: Workspace) -> None:
    """Apply the project's pending deltas. The edited files and the job's completion are one
    transaction, so a delta's edit is kept exactly when its job finishes; its status follows."""
    batch = take(job)
    if not batch.deltas:
        jobs.save_report(job, None, "No pending deltas to apply.\n")
        jobs.complete(job, JobStatus.FINISHED)
        return
    downloaded = download_project(project, workspace.project_dir)
    result = workspace.run_core({
        "project_dir": str(workspace.project_dir), "project_file": project.the_qgis_file_name,
        "deltas": [delta.content for delta in batch.deltas], "client_pks": batch.client_pks,
        "overwrite_conflicts": bool(job.overwrite_conflicts)})
    save_report(job, result)
    if result.error is not None:
        if jobs.complete(job, JobStatus.FAILED, error=result.error):
            record(job, None, batch.deltas)
        return
    edits = []
    for name, path in _edited(project, downloaded, workspace):
        sums = workspace.checksums(path)
        with sandbox.open_regular(path, workspace.root) as content:
            version_id = storage.put_object(storage.file_key(project.id, name), content,
                                            files.content_type_for(name))
        edits.append(files.NewVersion(files.target_of(project, name), version_id, sums,
                                      based_on=downloaded[name]))

    def completion(tx) -> None:
        jobs.completion(tx, job, JobStatus.FINISHED)

    try:
        if edits:
            files.commit_edits(_worker(job), project, edits, also=completion)
        elif not jobs.complete(job, JobStatus.FINISHED):
            return
    except Conflict as conflict:
        # Someone uploaded a new version of an edited file meanwhile: apply again on top of it.
        if jobs.complete(job, JobStatus.FAILED, error=conflict.message):
            put_back(job)
        return
    job.refresh(consistent_read=True)
    if job.status == JobStatus.FINISHED:
        record(job, result.feedback, batch.deltas)


def _worker(job: Job) -> Caller:
    """Who the job's edits and its follow-up are made as: its creator, through the worker."""
    return Caller(user=User.get(job.created_by_key), client_type=WORKER_CLIENT)


def _edited(project: Project, downloaded: dict[str, ProjectFile],
            workspace: Workspace) -> list[tuple[str, Path]]:
    """The data files whose bytes the job changed (deltas edit data, never the QGIS project)."""
    changed = []
    for name, item in downloaded.items():
        if name == project.the_qgis_file_name:
            continue
        path = local_path(workspace.project_dir, name)
        try:
            sums = workspace.checksums(path)
        except FileNotFoundError:
            continue
        if sums.sha256 != item.latest.sha256:
            changed.append((name, path))
    return changed


# --- What the job takes, and what becomes of it -----------------------------------------------


def take(job: Job) -> Batch:
    """Take the project's pending deltas (at most MAX_DELTAS_PER_JOB, oldest first) for `job`.
    Only the job that holds the project's lease calls this, so nothing else takes them."""
    keys = list(Delta.pending.query(job.project_id, limit=MAX_DELTAS_PER_JOB))[:MAX_DELTAS_PER_JOB]
    deltas = sorted((delta for delta in _read(job.project_id, [key.id for key in keys])
                     if delta.status == DeltaStatus.PENDING), key=lambda delta: delta.seq)
    storage.put_object(storage.job_key(job.project_id, job.id, TAKEN),
                       json.dumps([d.id for d in deltas]).encode(), "application/json")
    now = utcnow()
    with Delta.batch_write() as batch:
        for delta in deltas:
            delta.status, delta.job_id, delta.pending_project_id = DeltaStatus.STARTED, job.id, None
            delta.updated_at = now
            batch.save(delta)
    wanted = sorted({client_key(d.content) for d in deltas if d.content.get("method") != "create"})
    pks: dict[str, str] = {}
    for chunk in in_chunks(wanted, BATCH_GET_LIMIT):
        pks.update((f.client_key, f.pk) for f in
                   ClientFeaturePk.batch_get([(job.project_id, key) for key in chunk]))
    return Batch(deltas, pks)


def _read(project_id: str, ids: list[str]) -> list[Delta]:
    """The deltas as they are now (consistent reads: an index may lag)."""
    deltas = []
    for chunk in in_chunks(ids, BATCH_GET_LIMIT):
        deltas.extend(Delta.batch_get([(project_id, i) for i in chunk], consistent_read=True))
    return deltas


def _taken(job: Job) -> list[Delta]:
    data = storage.get_bytes(storage.job_key(job.project_id, job.id, TAKEN))
    return sorted(_read(job.project_id, json.loads(data) if data else []), key=lambda d: d.seq)


def record(job: Job, feedback: dict[str, Any] | None, taken: list[Delta] | None = None) -> None:
    """Write each taken delta's outcome from the job's report (idempotent: the sweeper calls it
    again for a job whose worker stopped after completing it, and reads what the job took).
    Deltas the report does not cover end in `error`; so do all of them when the job failed.
    A created feature's server key is kept for its client's later edits first; a delta whose
    key cannot be kept ends in `error` too, saying so, rather than `applied` with its later
    patches and deletes bound to miss the feature."""
    outcomes = {}
    for item in ((feedback or {}).get("outputs", {}).get("apply_deltas") or {}).get("delta_feedback", []):
        outcomes[item.get("delta_id")] = item
    now = utcnow()
    decided: list[Delta] = []
    for delta in _taken(job) if taken is None else taken:
        if delta.job_id != job.id or delta.status != DeltaStatus.STARTED:
            continue
        outcome = outcomes.get(delta.id)
        delta.status = CORE_STATUSES.get((outcome or {}).get("status"), DeltaStatus.ERROR)
        delta.feedback_json = None if outcome is None else compact_json(outcome)
        modified = (outcome or {}).get("modified_pk")
        delta.modified_pk = None if modified is None else str(modified)
        delta.updated_at = now
        decided.append(delta)
    created = [delta for delta in decided if delta.status == DeltaStatus.APPLIED
               and delta.modified_pk is not None and delta.content.get("method") == "create"]
    refused = _keep_client_keys(job.project_id, created)
    with Delta.batch_write() as batch:
        for delta in decided:
            if delta.id in refused:
                delta.status = DeltaStatus.ERROR
                delta.feedback_json = compact_json({
                    **delta.feedback, "e_type": "ERROR",
                    "msg": f"The feature was created (key {delta.modified_pk}), but its key could not "
                           f"be kept for this client's later edits of it: {refused[delta.id]}"})
            batch.save(delta)


def _keep_client_keys(project_id: str, created: list[Delta]) -> dict[str, str]:
    """Keep the server key of each feature in `created` under its client key; why DynamoDB
    refused to, by delta id. A refused batch is written again an item at a time, to tell which."""
    refused: dict[str, str] = {}
    for chunk in in_chunks(created, BATCH_WRITE_LIMIT):
        items = [(delta, ClientFeaturePk(project_id, client_key(delta.content), pk=delta.modified_pk))
                 for delta in chunk]
        try:
            with ClientFeaturePk.batch_write() as batch:
                for _, item in items:
                    batch.save(item)
        except PutError:
            for delta, item in items:
                try:
                    item.save()
                except PutError as error:
                    refused[delta.id] = error.cause_response_message or str(error)
    return refused


def put_back(job: Job) -> int:
    """The deltas `job` took become pending again (its edits were never committed); how many."""
    count = 0
    now = utcnow()
    with Delta.batch_write() as batch:
        for delta in _taken(job):
            if delta.job_id == job.id and delta.status == DeltaStatus.STARTED:
                delta.status, delta.pending_project_id, delta.updated_at = (
                    DeltaStatus.PENDING, job.project_id, now)
                batch.save(delta)
                count += 1
    return count


# --- The kind's hooks (kinds/__init__.py) -----------------------------------------------------


def on_failure(job: Job, final: bool) -> None:
    """A job that failed without completing itself: what it took is tried again by the next job,
    unless its message kept failing (`final`): then those deltas end in error."""
    if final:
        record(job, None)
    else:
        put_back(job)


def on_abandoned(job: Job) -> None:
    """A job completed by a worker that stopped before recording the deltas' outcomes."""
    record(job, jobs.feedback_of(job) if job.status == JobStatus.FINISHED else None)


def apply_what_came_meanwhile(job: Job, project: Project) -> None:
    """Deltas pushed while the job ran (or beyond what one job takes) get a job of their own."""
    if any(True for _ in Delta.pending.query(project.id, limit=1)):
        jobs.trigger(_worker(job), project, JobType.DELTA_APPLY)
