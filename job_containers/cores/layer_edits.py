"""One layer's edits in a job: all its deltas in one QGIS edit session, committed once at the end.

Committing after every delta, as QFieldCloud's worker does, writes the data source once per delta;
one commit per layer is what makes a thousand deltas a second possible. Each delta still succeeds or
fails alone: it runs inside its own edit command, and a failure undoes that command only
(`destroyEditCommand`), keeping the earlier deltas' edits in the buffer.

Values, geometries and the data source's NOT NULL/UNIQUE constraints are checked per delta, but
the data source can still refuse the commit (a trigger, a CHECK constraint). QGIS commits in stages
(changed values and geometries, then deleted features, then added features) and keeps in the edit
buffer what it did not commit; in a GeoPackage each stage is one transaction. The deltas whose edits
left the buffer are on disk; every other delta of the layer is then applied again, in order, each
committed on its own, so that each gets its own status.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from qgis.core import QgsFeature, QgsGeometry, QgsVectorLayer, QgsVectorLayerUtils

from job_containers.cores.delta_format import APPLIED, Delta, DeltaConflict, DeltaError, Outcome
from job_containers.cores.features import (
    conflicts,
    constraint_errors,
    field_value,
    find_feature,
    primary_key,
    same_value,
)
from job_containers.cores.geometry import fit_to_layer, parse_wkt, same_geometry

logger = logging.getLogger(__name__)


@dataclass
class _Run:
    delta: Delta
    outcome: Outcome
    # The feature this delta edited; None when it changed nothing (failed, or nothing differed).
    # Negative for a feature added in this session: QGIS's temporary id until the commit.
    edited_fid: int | None = None


class LayerEdits:
    def __init__(self, layer: QgsVectorLayer, overwrite_conflicts: bool):
        self.layer = layer
        self.pk = primary_key(layer)
        self.overwrite_conflicts = overwrite_conflicts
        if not layer.startEditing():
            raise DeltaError(f'Cannot edit layer "{layer.name()}"', self._provider_errors())
        self._context = layer.createExpressionContext()
        self._runs: list[_Run] = []
        # temporary id of an added feature -> the feature as committed, with its real PK
        self._committed: dict[int, QgsFeature] = {}
        self._edit = {"create": self._create, "patch": self._patch, "delete": self._delete}

    def apply(self, delta: Delta) -> None:
        run = _Run(delta, Outcome.of_delta(delta))
        self._runs.append(run)
        self._apply(run)

    def commit(self) -> list[Outcome]:
        """Commits the layer and ends the session; the final outcome of each of its deltas."""
        if not self._commit(stop_editing=True):
            self._apply_again_one_by_one()
        for run in self._runs:
            if run.delta.method == "create" and run.outcome.status == APPLIED:
                committed = self._committed.get(run.edited_fid)
                run.outcome.modified_pk = committed.attribute(self.pk.index) if committed else None
        return self.outcomes()

    def outcomes(self) -> list[Outcome]:
        return [run.outcome for run in self._runs]

    def _apply(self, run: _Run) -> None:
        run.outcome, run.edited_fid = Outcome.of_delta(run.delta), None
        self.layer.beginEditCommand(f"delta {run.delta.index}")
        try:
            edited_fid = self._edit[run.delta.method](run.delta, run.outcome)
        except Exception as error:  # one bad delta must never stop the others
            self.layer.destroyEditCommand()
            run.outcome.fail(error)
            if not isinstance(error, DeltaError | DeltaConflict):
                logger.exception("Unexpected error applying delta %s", run.delta.uuid)
            return
        self.layer.endEditCommand()
        run.edited_fid = edited_fid

    def _create(self, delta: Delta, outcome: Outcome) -> int:
        fields = self.layer.fields()
        values = {}
        for name, value in delta.new_attributes.items():
            index = fields.indexOf(name)
            if index >= 0:
                values[index] = field_value(fields.at(index), value)
        geometry = self._new_geometry(delta)
        feature = QgsVectorLayerUtils.createFeature(self.layer, geometry, values, self._context)
        # createFeature lets a default that "applies on update" replace given values; the client
        # already evaluated it when the feature was edited, so its value stands.
        for index, value in values.items():
            if self.layer.defaultValueDefinition(index).applyOnUpdate():
                feature.setAttribute(index, value)
        self._check_constraints(feature, list(range(fields.count())))
        if not self.layer.addFeature(feature):
            raise DeltaError("Unable to add the feature", self._provider_errors())
        return feature.id()

    def _new_geometry(self, delta: Delta) -> QgsGeometry:
        wkt = delta.new.get("geometry")
        if not self.layer.isSpatial():
            self._warn_ignored_geometry(delta, wkt)
            return QgsGeometry()
        if wkt is None:
            logger.warning("Delta %s creates a feature without geometry on a spatial layer", delta.uuid)
            return QgsGeometry()
        return fit_to_layer(parse_wkt(wkt), self.layer)

    def _patch(self, delta: Delta, outcome: Outcome) -> int | None:
        feature = self._find(delta)
        self._check_conflicts(feature, delta, outcome)
        geometry_changed = self._change_geometry(feature, delta)
        changed = self._change_attributes(feature, delta)
        self._check_constraints(feature, changed)
        outcome.modified_pk = feature.attribute(self.pk.index)
        return feature.id() if geometry_changed or changed else None

    def _change_geometry(self, feature: QgsFeature, delta: Delta) -> bool:
        if "geometry" not in delta.new:
            return False
        wkt = delta.new["geometry"]
        if not self.layer.isSpatial():
            self._warn_ignored_geometry(delta, wkt)
            return False
        geometry = QgsGeometry() if wkt is None else fit_to_layer(parse_wkt(wkt), self.layer)
        if same_geometry(geometry, feature.geometry()):
            return False
        # skipDefaultValues: the client sends the values its "on update" defaults gave.
        if not self.layer.changeGeometry(feature.id(), geometry, True):
            raise DeltaError("Unable to change the geometry", self._provider_errors())
        return True

    def _change_attributes(self, feature: QgsFeature, delta: Delta) -> list[int]:
        """Changes the layer's feature, and `feature` alike so that it shows the result."""
        fields = self.layer.fields()
        changed = []
        for name, value in delta.new_attributes.items():
            index = fields.indexOf(name)
            if index < 0:
                raise DeltaError(f'Unable to change attribute "{name}": the layer has no such field')
            current = feature.attribute(index)
            if same_value(fields.at(index), current, value):
                continue
            new_value = field_value(fields.at(index), value)
            if not self.layer.changeAttributeValue(feature.id(), index, new_value, current, True):
                raise DeltaError(f'Unable to change attribute "{name}"', self._provider_errors())
            feature.setAttribute(index, new_value)
            changed.append(index)
        return changed

    def _delete(self, delta: Delta, outcome: Outcome) -> int:
        feature = self._find(delta)
        self._check_conflicts(feature, delta, outcome)
        if not self.layer.deleteFeature(feature.id()):
            raise DeltaError("Unable to delete the feature", self._provider_errors())
        outcome.modified_pk = feature.attribute(self.pk.index)
        return feature.id()

    def _find(self, delta: Delta) -> QgsFeature:
        return find_feature(self.layer, self.pk, delta.target_pk)

    def _check_conflicts(self, feature: QgsFeature, delta: Delta, outcome: Outcome) -> None:
        found = conflicts(self.layer, feature, delta.old)
        if found and not self.overwrite_conflicts:
            raise DeltaConflict(found)
        # Overwritten conflicts stay on record in the feedback of the applied delta.
        outcome.conflicts = found or None

    def _check_constraints(self, feature: QgsFeature, indexes: list[int]) -> None:
        errors = constraint_errors(self.layer, feature, indexes)
        if errors:
            raise DeltaError(f'The data source of layer "{self.layer.name()}" refuses the feature', errors)

    def _warn_ignored_geometry(self, delta: Delta, wkt: str | None) -> None:
        if wkt:
            logger.warning("Layer %s has no geometry: ignored that of delta %s", self.layer.id(), delta.uuid)

    def _provider_errors(self) -> list[str]:
        provider = self.layer.dataProvider()
        errors = provider.errors()
        provider.clearErrors()
        return errors

    def _commit(self, stop_editing: bool) -> bool:
        # QGIS commits added features in the order they were added, i.e. by decreasing temporary id.
        added_ids = sorted(self.layer.editBuffer().addedFeatures(), reverse=True)

        def on_added(_layer_id: str, features: list[QgsFeature]) -> None:
            # An exception here would be raised inside a Qt slot, which aborts the process.
            if len(features) == len(added_ids):
                self._committed.update(zip(added_ids, features, strict=True))
            else:
                logger.error("Layer %s added %d features, not %d", _layer_id, len(features), len(added_ids))

        self.layer.committedFeaturesAdded.connect(on_added)
        try:
            return self.layer.commitChanges(stop_editing)
        finally:
            self.layer.committedFeaturesAdded.disconnect(on_added)

    def _apply_again_one_by_one(self) -> None:
        refusal = self.layer.commitErrors()
        logger.warning("Commit of layer %s failed, applying its deltas alone: %s", self.layer.id(), refusal)
        landed = self._landed_runs()
        self.layer.rollBack(False)
        for run in self._runs:
            if id(run) in landed:
                continue
            self._apply(run)
            if run.edited_fid is not None and not self._commit(stop_editing=False):
                errors = [line.strip() for line in self.layer.commitErrors() if line.strip()]
                self.layer.rollBack(False)
                run.outcome.fail(DeltaError("Failed to commit changes", errors))
        self.layer.rollBack()

    def _landed_runs(self) -> set[int]:
        """The runs whose edits the failed commit wrote anyway: they left the edit buffer."""
        buffer = self.layer.editBuffer()
        pending = {
            "patch": set(buffer.changedAttributeValues()) | set(buffer.changedGeometries()),
            "delete": set(buffer.deletedFeatureIds()),
        }
        return {id(run) for run in self._runs if self._on_disk(run, pending)}

    def _on_disk(self, run: _Run, pending: dict[str, set[int]]) -> bool:
        if run.edited_fid is None:
            return False
        if run.edited_fid < 0:  # an edit of a feature added in this session lands with it, or not at all
            return run.edited_fid in self._committed
        return run.edited_fid not in pending[run.delta.method]
