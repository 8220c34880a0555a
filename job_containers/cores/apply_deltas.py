"""The `apply_deltas` job core: apply QField's deltas to a project's data files with QGIS editing.

The deltas are applied in the order given, each to its layer, so that the data sources' defaults,
default-value expressions and constraints hold as they do in QGIS and QField. Every delta gets its
own status (delta_format.py); one that fails, for any reason, leaves the others alone. Each layer
is edited in one session and committed once (layer_edits.py). A project QGIS cannot open is a workflow
error, and then no delta is applied.

The runner around this core fetches the files, uploads the changed ones and records the statuses;
it throws the directory away if the job dies, so the files need not be consistent after a crash.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from qgis.core import QgsVectorLayer

from job_containers.cores import qgis_app
from job_containers.cores.delta_format import APPLIED, Delta, DeltaError, Outcome
from job_containers.cores.feedback import Step, StopWorkflow, Workflow
from job_containers.cores.layer_edits import LayerEdits
from job_containers.cores.qgis_project import OpenedProject, open_project

logger = logging.getLogger(__name__)


def apply_deltas(
    project_dir: Path,
    project_file: str,
    deltas: list[dict],
    client_pks: dict[str, str] | None,
    overwrite_conflicts: bool,
) -> dict:
    """The feedback (version 2.0) of applying `deltas`; `outputs.apply_deltas.delta_feedback` holds
    one item per delta, in input order. `client_pks` maps `clientId__localLayerId__localPk` to the
    server PK of a feature the client created earlier. Never raises."""
    workflow = Workflow(
        "apply_changes",
        "Apply Changes",
        [
            Step("start_qgis_app", "Start QGIS Application"),
            Step("apply_deltas", "Apply Deltas", outputs=("delta_feedback",)),
        ],
        version="3.0",
    )
    try:
        with workflow.step("start_qgis_app") as returns:
            returns["qgis_version"] = qgis_app.start()
        with workflow.step("apply_deltas") as returns:
            project_path = Path(project_dir) / project_file
            returns["delta_feedback"] = _apply(project_path, deltas, client_pks or {}, overwrite_conflicts)
    except StopWorkflow:
        pass
    return workflow.feedback()


def _apply(
    project_path: Path, deltas: list[dict], client_pks: dict[str, str], overwrite_conflicts: bool
) -> list[dict[str, Any]]:
    opened = _open_project(project_path)
    try:
        outcomes = _apply_to_layers(opened, deltas, client_pks, overwrite_conflicts)
    finally:
        opened.project.clear()
    return [outcome.feedback() for outcome in outcomes]


def _open_project(path: Path) -> OpenedProject:
    opened = open_project(path, for_editing=True)
    # A project saved with transaction groups would edit its layers in pass-through mode, where
    # each edit is written at once; layer_edits.py relies on buffered editing.
    opened.project.setAutoTransaction(False)
    return opened


def _apply_to_layers(
    opened: OpenedProject, deltas: list[dict], client_pks: dict[str, str], overwrite: bool
) -> list[Outcome]:
    outcomes = [Outcome.of(index, raw) for index, raw in enumerate(deltas)]
    # per layer id: its edit session, or why its deltas cannot be applied
    layers: dict[str, LayerEdits | DeltaError] = {}
    for index, raw in enumerate(deltas):
        try:
            delta = Delta.parse(index, raw, client_pks)
            outcomes[index] = Outcome.of_delta(delta)
            if delta.layer_id not in layers:
                layers[delta.layer_id] = _layer_edits(opened, delta.layer_id, overwrite)
            edits = layers[delta.layer_id]
            if isinstance(edits, DeltaError):
                raise edits
            edits.apply(delta)
        except Exception as error:  # one malformed delta must never stop the others
            outcomes[index].fail(error)
    for edits in layers.values():
        if isinstance(edits, LayerEdits):
            for outcome in _commit(edits):
                outcomes[outcome.delta_index] = outcome
    return outcomes


def _layer_edits(opened: OpenedProject, layer_id: str, overwrite: bool) -> LayerEdits | DeltaError:
    layer = opened.project.mapLayer(layer_id)
    try:
        if layer is None:
            raise DeltaError(f'No layer with id "{layer_id}"')
        if layer_id in opened.refused:
            raise DeltaError(f'Layer "{layer.name()}" cannot be edited: {opened.refused[layer_id].reason}')
        if not isinstance(layer, QgsVectorLayer):
            raise DeltaError(f'Layer "{layer.name()}" is not a vector layer')
        if not layer.isValid():
            raise DeltaError(f'Layer "{layer.name()}" is invalid{_error_summary(layer)}')
        return LayerEdits(layer, overwrite)
    except DeltaError as error:
        return error


def _error_summary(layer: QgsVectorLayer) -> str:
    # QgsError.summary() crashes QGIS 3.22 on an error without messages.
    error = layer.error()
    return f": {error.summary()}" if error.messageList() else ""


def _commit(edits: LayerEdits) -> list[Outcome]:
    """The layer's final outcomes; an unexpected failure while committing fails its applied deltas
    only (what reached the disk is then unknown), not the job."""
    try:
        return edits.commit()
    except Exception as error:
        logger.exception("Unexpected error committing layer %s", edits.layer.id())
        edits.layer.rollBack()
        outcomes = edits.outcomes()
        for outcome in outcomes:
            if outcome.status == APPLIED:
                outcome.fail(error)
        return outcomes
