"""Building the offline project QField downloads: what a package holds.

From a project opened with QGIS, into an output directory:

- `<stem>_qfield.qgs`, the project file with its layers per their cloud action (cloud_actions):
  offline layers read `data.gpkg`, removed and invalid layers are gone, each packaged layer keeps
  its id and carries what QField needs to turn edits into deltas (`QFieldSync/remoteLayerId`,
  `QFieldSync/sourceDataPrimaryKeys`, and for offline layers `isOfflineEditable`,
  `remoteSource`, `remoteProvider`); the project carries `OfflineEditingPlugin/OfflineDbPath`
  and `qfieldsync/originalProjectPath`. Always a `.qgs`: no zip timestamps to pin.
- `data.gpkg`, the offline layers' features (offline);
- the files of copied file-based layers with their sidecars, the project's data directories, and
  its companion files (package_copies).

Attachments are not packaged. The output is byte-identical for an unchanged project: the project
file is the uploaded XML with deterministic edits (project_xml) and the GeoPackage is pinned.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsCoordinateTransform, QgsProject, QgsRectangle, QgsVectorLayer

from job_containers.cores import cloud_actions, layers, offline, package_copies, project_file
from job_containers.cores.cloud_actions import LayerPlan
from job_containers.cores.offline import GPKG_NAME, OfflineLayer, OfflineTable
from job_containers.cores.project_details import area_of_interest, attachment_dirs, data_dirs
from job_containers.cores.project_xml import ProjectXml
from job_containers.cores.qgis_project import OpenedProject

PACKAGED_SUFFIX = "_qfield"


def package_project(opened: OpenedProject, out_dir: Path) -> Path:
    """Write the package of `opened` into `out_dir`; the packaged project file."""
    project, project_dir = opened.project, opened.directory
    out_dir.mkdir(parents=True, exist_ok=True)
    packaged_stem = f"{opened.path.stem}{PACKAGED_SUFFIX}"
    xml = ProjectXml(project_file.read_project_xml(opened.path))

    offline_layers = []
    for plan in _plans(opened):
        if plan.action == cloud_actions.OFFLINE:
            offline_layers.append(OfflineLayer(plan.layer, plan.pk))
        elif plan.action in cloud_actions.FILE_ACTIONS and (path := layers.layer_file(plan.layer)):
            package_copies.copy_layer_files(path, project_dir, out_dir)
        _mark_layer(xml, plan)
    xml.remove_empty_groups()

    if offline_layers:
        gpkg = out_dir / GPKG_NAME
        tables = offline.write_offline_gpkg(offline_layers, gpkg, _offline_area(project), project)
        for offline_layer in offline_layers:
            _point_at_offline_table(xml, offline_layer.layer, tables[offline_layer.layer.id()], opened)
        xml.write_entry("OfflineEditingPlugin", "OfflineDbPath", f"./{GPKG_NAME}")
        xml.disable_provider_side_editing()
    xml.write_entry("qfieldsync", "originalProjectPath", opened.path.name)
    packaged = out_dir / f"{packaged_stem}.qgs"
    xml.write(packaged)

    image_decoration = project.readEntry("Image", "/ImagePath", "")[0]
    package_copies.copy_companions(opened.path, out_dir, packaged_stem, image_decoration)
    auxiliary_storage = project_file.read_qgz_auxiliary_storage(opened.path)
    if auxiliary_storage is not None:
        (out_dir / f"{packaged_stem}.qgd").write_bytes(auxiliary_storage)
    package_copies.copy_data_dirs(project_dir, out_dir, data_dirs(project), attachment_dirs(project))
    return packaged


def _plans(opened: OpenedProject) -> list[LayerPlan]:
    project = opened.project
    plans = []
    for layer_id in layers.ordered_layer_ids(project):
        layer, refusal = project.mapLayer(layer_id), opened.refused.get(layer_id)
        plans.append(cloud_actions.plan_layer(layer, layers.localized_source(layer, opened) is not None,
                                              refusal.provider if refusal else None))
    return plans


def _mark_layer(xml: ProjectXml, plan: LayerPlan) -> None:
    layer_id = plan.layer.id()
    if plan.action == cloud_actions.REMOVE:
        xml.remove_layer(layer_id)
        return
    if plan.action == cloud_actions.UNTOUCHED:
        return
    xml.set_layer_property(layer_id, "QFieldSync/remoteLayerId", layer_id)
    if plan.pk:
        # Plural by history: QField has only ever supported a single-column key.
        xml.set_layer_property(layer_id, "QFieldSync/sourceDataPrimaryKeys", plan.pk)
    if plan.lacks_pk:
        xml.set_read_only(layer_id)
        xml.set_layer_property(layer_id, "QFieldSync/unsupported_source_pk", "1")


def _point_at_offline_table(xml: ProjectXml, layer: QgsVectorLayer, table: OfflineTable,
                            opened: OpenedProject) -> None:
    layer_id = layer.id()
    datasource = f"./{GPKG_NAME}|layername={table.name}"
    if layer.providerType() == "ogr" and layer.subsetString():
        # The table holds what all layers on this source show; this layer still shows its part.
        datasource += f"|subset={layer.subsetString()}"
    properties = {
        "isOfflineEditable": True,
        "remoteSource": layers.datasource(layer, opened),
        "remoteProvider": layer.providerType(),
        "remoteLayerId": layer_id,
        "layerNameSuffix": "",
    }
    xml.set_datasource(layer_id, datasource, "ogr")
    for key, value in properties.items():
        xml.set_layer_property(layer_id, key, value)
    if table.fid_is_new:
        xml.hide_field(layer_id, table.fid_column)


def _offline_area(project: QgsProject) -> QgsRectangle | None:
    """Where offline copies are limited to the area of interest: that area, in project CRS."""
    area = area_of_interest(project)
    if area is None or not project.readBoolEntry("qfieldsync", "offlineCopyOnlyAoi", False)[0]:
        return None
    rectangle, crs = area
    return QgsCoordinateTransform(crs, project.crs(), project).transformBoundingBox(rectangle)
