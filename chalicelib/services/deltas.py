"""Deltas: edits made offline in QField, uploaded as deltafiles and applied by delta_apply jobs.

Upload stores every delta once (keyed by its uuid: a retried upload stores nothing twice), in
upload order, `pending` (or `unpermitted`, for a reporter's patch or delete, or `error` at once
for a layer the project does not have), and starts a delta_apply job. The job takes the pending
deltas when it starts (`take`), the worker applies them with QGIS, and their statuses are
recorded from the job's report (`record`), after the edited files were committed together with
the job's completion: an edit is in the data exactly when its job finished.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError

from chalicelib.adapters import storage
from chalicelib.errors import DeltasNotStored, InvalidDeltafile, NoQgisProject, PayloadTooLarge
from chalicelib.models import ClientFeaturePk, Delta, Job, ListCount, Project
from chalicelib.models.base import Transaction, utcnow
from chalicelib.models.counts import count_id
from chalicelib.models.deltas import DeltaStatus
from chalicelib.models.jobs import JobType
from chalicelib.models.listing import Listing
from chalicelib.models.projects import ProjectType
from chalicelib.models.shapes import compact_json
from chalicelib.observability import logger
from chalicelib.rules.permissions import Action, ProjectRole, allowed
from chalicelib.services import jobs
from chalicelib.services.auth import Caller
from chalicelib.services.inputs import Deltafile

# A delta is one DynamoDB item (400 KB at most, with its bookkeeping).
MAX_DELTA_BYTES = 300_000
# The deltas one delta_apply job takes; the rest wait for the next job.
MAX_DELTAS_PER_JOB = 1000
TAKEN = "deltas.json"  # which deltas a job took, beside its report
_BATCH = 100  # BatchGetItem and TransactWriteItems take at most 100 items
_BATCH_WRITE_ITEMS = 25  # BatchWriteItem takes at most 25
_WRITE_BATCH = _BATCH - 2  # deltas per transaction, beside the project's and deltafile's counts
_TRANSACTION_BYTES = 3_000_000  # below TransactWriteItems' 4 MB
_WRITE_ATTEMPTS = 3
# How the worker's per-delta statuses become the statuses the API shows (reference §5.3).
WORKER_STATUSES = {
    "status_applied": DeltaStatus.APPLIED,
    "status_conflict": DeltaStatus.CONFLICT,
    "status_apply_failed": DeltaStatus.NOT_APPLIED,
}


def _chunks(items: list, size: int = _BATCH) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def client_key(delta: dict[str, Any]) -> str:
    """How a client names a feature it created offline (the worker's `clientPks` key)."""
    return f"{delta.get('clientId')}__{delta.get('localLayerId')}__{delta.get('localPk')}"


# --- Upload ---------------------------------------------------------------------------------


def _check(project: Project, deltafile: Deltafile) -> None:
    if deltafile.project != project.id:
        raise InvalidDeltafile(
            f"Deltafile's project id ({deltafile.project}) doesn't match URL parameter project id "
            f"({project.id})."
        )
    if not project.the_qgis_file_name:
        raise NoQgisProject()


def _known_layers(project: Project) -> set[str] | None:
    """The layer ids of the project's latest package, or None when it was never packaged."""
    if not project.package_job_id:
        return None
    package_job = jobs.find(project.package_job_id)
    feedback = jobs.feedback_of(package_job) if package_job else None
    layers = ((feedback or {}).get("outputs", {}).get("qgis_layers_data") or {}).get("layers_by_id")
    return set(layers) if isinstance(layers, dict) else None


def _existing_ids(project_id: str, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(ids):
        found.update(d.id for d in Delta.batch_get([(project_id, i) for i in chunk],
                                                   attributes_to_get=["id"]))
    return found


def _first_status(role: ProjectRole, method: str, layer_id: str,
                  layers: set[str] | None) -> tuple[DeltaStatus, dict[str, Any] | None]:
    action = Action.CREATE_FEATURE if method == "create" else Action.CHANGE_FEATURE
    if not allowed(role, action):
        return DeltaStatus.UNPERMITTED, {
            "msg": "User has no rights to create delta on this project. Only editors and above "
                   "may change or delete features; reporters may only add them."}
    if layers is not None and layer_id not in layers:
        return DeltaStatus.ERROR, {
            "msg": f"The project has no layer with id `{layer_id}` (as of its latest package).",
            "status": "status_apply_failed", "e_type": "ERROR"}
    return DeltaStatus.PENDING, None


def _new_items(caller: Caller, project: Project, role: ProjectRole,
               deltafile: Deltafile) -> list[Delta]:
    contents = deltafile.contents()
    unique: dict[str, int] = {}
    for index, delta in enumerate(deltafile.deltas):
        unique.setdefault(delta.uuid, index)
    existing = _existing_ids(project.id, list(unique))
    layers = _known_layers(project)
    now = utcnow()
    items = []
    for uuid, index in unique.items():
        if uuid in existing:
            continue
        delta = deltafile.deltas[index]
        content = compact_json(contents[index])
        if len(content) > MAX_DELTA_BYTES:
            raise PayloadTooLarge(f"Delta `{uuid}` is larger than {MAX_DELTA_BYTES} bytes.")
        status, feedback = _first_status(role, delta.method, delta.layer_id, layers)
        items.append(Delta(
            project.id, uuid, seq=f"{now.isoformat()}#{deltafile.id}#{index:06d}",
            deltafile_id=deltafile.id, client_id=delta.clientId, created_by=caller.username,
            created_at=now, updated_at=now, status=status, content_json=content,
            feedback_json=None if feedback is None else compact_json(feedback),
            pending_project_id=project.id if status == DeltaStatus.PENDING else None,
        ))
    return items


def _write_new(items: list[Delta]) -> list[Delta]:
    """Store the deltas that are not stored yet, each exactly once even when a retry of the
    same upload runs at the same time; the ones this call stored. `DeltasNotStored` when a
    write fails for any other reason: the deltas of the batches before it stay stored, and
    pushing the same deltafile again stores the rest."""
    stored: list[Delta] = []
    batches, batch, size = [], [], 0
    for item in items:
        item_size = len(item.content_json)
        if batch and (len(batch) == _WRITE_BATCH or size + item_size > _TRANSACTION_BYTES):
            batches.append(batch)
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        batches.append(batch)
    for batch in batches:
        stored.extend(_write_batch(batch))
    return stored


def _write_batch(batch: list[Delta]) -> list[Delta]:
    """One transaction of new deltas with their counts; what of `batch` it stored."""
    for _ in range(_WRITE_ATTEMPTS):
        tx = Transaction()
        try:
            with tx:
                for item in batch:
                    tx.save(item, condition=Delta.id.does_not_exist(), label="delta")
                _count(tx, batch)
            return batch
        except TransactWriteError as error:
            raced = "delta" in tx.failed(error) or Transaction.conflicted(error)
            if not raced:
                logger.exception("Deltas could not be stored", extra={"deltas": len(batch)})
                raise DeltasNotStored() from None
        # Another upload of the same deltas won a race: store only what is still new.
        taken = _existing_ids(batch[0].project_id, [item.id for item in batch])
        batch = [item for item in batch if item.id not in taken]
        if not batch:
            return []
    raise DeltasNotStored()


def _count(tx: Transaction, batch: list[Delta]) -> None:
    """The project's and the deltafile's delta counts, in the transaction that stores `batch`."""
    first = batch[0]
    ListCount.add(tx, count_id("deltas", first.project_id), len(batch))
    ListCount.add(tx, count_id("deltafile", first.project_id, first.deltafile_id), len(batch))


def upload(caller: Caller, project: Project, role: ProjectRole, deltafile: Deltafile) -> None:
    if project.project_type == ProjectType.TEMPLATE:
        raise InvalidDeltafile("Template projects take no deltas.")
    _check(project, deltafile)
    new = _new_items(caller, project, role, deltafile)
    try:
        _write_new(new)
    finally:
        # Also when a later batch failed: what was stored must not wait for the next push.
        if any(delta.status == DeltaStatus.PENDING for delta in new):
            jobs.trigger(caller, project, JobType.DELTA_APPLY)


def apply(caller: Caller, project: Project) -> Job | None:
    """`POST deltas/apply/<project>/`: a delta_apply job for whatever is pending."""
    if not project.the_qgis_file_name:
        raise NoQgisProject()
    return jobs.trigger(caller, project, JobType.DELTA_APPLY, limited=True)


# --- Listing --------------------------------------------------------------------------------


def list_deltas(project: Project, ordering: str | None) -> Listing[Delta]:
    newest_first = (ordering or "").strip() == "-created_at"
    return Listing(Delta, project.id, index=Delta.in_order, forward=not newest_first,
                   total=ListCount.of(count_id("deltas", project.id)))


def list_deltafile(project: Project, deltafile_id: str) -> Listing[Delta]:
    # Deltafile ids come from clients: another project's deltafile of the same id is not shown.
    return Listing(Delta, deltafile_id, index=Delta.of_file, filter=Delta.project_id == project.id,
                   total=ListCount.of(count_id("deltafile", project.id, deltafile_id)))


# --- Run by the worker ----------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """The deltas a job applies, in order, and the server keys of features their clients made."""

    deltas: list[Delta]
    client_pks: dict[str, str]


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
    for chunk in _chunks(wanted):
        pks.update((f.client_key, f.pk) for f in
                   ClientFeaturePk.batch_get([(job.project_id, key) for key in chunk]))
    return Batch(deltas, pks)


def _read(project_id: str, ids: list[str]) -> list[Delta]:
    """The deltas as they are now (consistent reads: an index may lag)."""
    deltas = []
    for chunk in _chunks(ids):
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
        delta.status = WORKER_STATUSES.get((outcome or {}).get("status"), DeltaStatus.ERROR)
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
    for chunk in _chunks(created, _BATCH_WRITE_ITEMS):
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


def any_pending(project_id: str) -> bool:
    return any(True for _ in Delta.pending.query(project_id, limit=1))
