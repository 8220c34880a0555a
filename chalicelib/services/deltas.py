"""Deltas: edits made offline in QField, uploaded as deltafiles and applied by delta_apply jobs.

Upload stores every delta once (keyed by its uuid: a retried upload stores nothing twice), in
upload order, `pending` (or `unpermitted`, for a reporter's patch or delete, or `error` at once
for a layer the project does not have), and starts a delta_apply job, which applies them with
QGIS and records their statuses (job_containers/kinds/delta_apply.py).
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import TransactWriteError

from chalicelib.errors import DeltasNotStored, InvalidDeltafile, NoQgisProject, PayloadTooLarge
from chalicelib.models import Delta, Job, ListCount, Project
from chalicelib.models.base import BATCH_GET_LIMIT, TRANSACTION_LIMIT, Transaction, in_chunks, utcnow
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
_WRITE_BATCH = TRANSACTION_LIMIT - 2  # deltas per transaction, beside the project's and deltafile's counts
_TRANSACTION_BYTES = 3_000_000  # below TransactWriteItems' 4 MB
_WRITE_ATTEMPTS = 3


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
    for chunk in in_chunks(ids, BATCH_GET_LIMIT):
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
