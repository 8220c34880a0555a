"""What packaging does with each layer: its QFieldSync cloud action, decided as QFieldSync
(libqfieldsync) decides it for QFieldCloud.

A layer's action is its `QFieldSync/cloud_action` custom property, or by default `offline` for a
vector layer (`no_action` for a virtual one and for any other kind):

- offline: the features go into data.gpkg and the layer is edited there (deltas come back);
- copy, keep_existent, no_action: a file-based layer's file is copied with its sidecar files, any
  other source (database, web service) is left as it is;
- remove: the layer is left out.

A vector layer without a usable primary key cannot round-trip its edits: it is packaged read-only
as `no_action` and flagged `QFieldSync/unsupported_source_pk`. Invalid layers are left out, except
web rasters the server could not (or may not) reach, which may work on the device. Layers in a localized
(shared datasets) path stay untouched, valid or not: QField reads them from the owner's shared
datasets project, not from the package.
"""

from __future__ import annotations

from dataclasses import dataclass

from qgis.core import QgsMapLayer, QgsVectorLayer

from job_containers.cores import layers

OFFLINE, COPY, KEEP_EXISTENT, NO_ACTION, REMOVE = "offline", "copy", "keep_existent", "no_action", "remove"
# Not a QFieldSync action: the layer is packaged exactly as the project has it.
UNTOUCHED = "untouched"
FILE_ACTIONS = (COPY, KEEP_EXISTENT, NO_ACTION)


@dataclass(frozen=True)
class LayerPlan:
    layer: QgsMapLayer
    action: str
    # The source primary key of a valid vector layer ("" if it has none); see layers.source_pk_name.
    pk: str = ""

    @property
    def lacks_pk(self) -> bool:
        return isinstance(self.layer, QgsVectorLayer) and self.layer.isValid() and not self.pk


def plan_layer(layer: QgsMapLayer, is_localized: bool, provider: str | None = None) -> LayerPlan:
    """`provider`: the layer's provider as the project names it, where QGIS was not allowed to
    load it (a refused source)."""
    if is_localized:
        return LayerPlan(layer, UNTOUCHED)  # QField reads it from the shared datasets project
    if not layer.isValid():
        return LayerPlan(layer, UNTOUCHED if (provider or layer.providerType()) == "wms" else REMOVE)
    if layer.source().lower().endswith(".ecw"):
        return LayerPlan(layer, REMOVE)  # QField cannot read ECW rasters
    action = layer.customProperty("QFieldSync/cloud_action") or _default_action(layer)
    if not isinstance(layer, QgsVectorLayer):
        return LayerPlan(layer, NO_ACTION if action == OFFLINE else action)
    pk = layers.source_pk_name(layer)
    if not pk and action != REMOVE:
        action = NO_ACTION
    return LayerPlan(layer, action, pk)


def _default_action(layer: QgsMapLayer) -> str:
    if isinstance(layer, QgsVectorLayer) and layer.providerType() != "virtual":
        return OFFLINE
    return NO_ACTION
