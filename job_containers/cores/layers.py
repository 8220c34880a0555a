"""What the API reports about each layer of a project (`layers_by_id`): validity with a readable
reason, source, QFieldSync settings, primary key, fields and feature count.

The same dict describes the layers of an uploaded project (process_projectfile's
`project_details`) and those of a project before and after packaging (package's
`qgis_layers_data` / `qfield_layer_data`), and QField reads it from `packages/<id>/latest/`.
Paths are given relative to the project directory: the worker's own directories mean nothing to
a user, and passwords are removed from database sources.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsApplication,
    QgsDataSourceUri,
    QgsError,
    QgsFieldConstraints,
    QgsMapLayer,
    QgsProject,
    QgsProviderRegistry,
    QgsReadWriteContext,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from job_containers.cores import compat
from job_containers.cores.qgis_project import OpenedProject

# Both QgsMapLayerType (3.22) and Qgis.LayerType (newer) number layer kinds alike; the names are
# those of current QGIS, which QFieldCloud's worker reports.
LAYER_TYPE_NAMES = {
    0: "Vector", 1: "Raster", 2: "Plugin", 3: "Mesh", 4: "VectorTile", 5: "Annotation",
    6: "PointCloud", 7: "Group", 8: "TiledScene",
}
GEOMETRY_TYPE_NAMES = {0: "Point", 1: "Line", 2: "Polygon", 3: "Unknown", 4: "Null"}
_STRENGTH_NAMES = {0: "not_set", 1: "hard", 2: "soft"}
_LOCALIZED_PREFIXES = ("localized:", "file:localized:")


def layers_by_id(opened: OpenedProject) -> dict[str, dict[str, Any]]:
    """One dict per map layer, in layer-tree order."""
    project = opened.project
    return {
        layer_id: layer_data(project.mapLayer(layer_id), opened) for layer_id in ordered_layer_ids(project)
    }


def ordered_layer_ids(project: QgsProject) -> list[str]:
    """Layer ids as the legend lists them, top to bottom; layers outside the legend last."""
    layers = project.mapLayers()
    in_tree = [node.layerId() for node in project.layerTreeRoot().findLayers() if node.layerId() in layers]
    return list(dict.fromkeys(in_tree + list(layers)))


def layer_data(layer: QgsMapLayer, opened: OpenedProject) -> dict[str, Any]:
    is_vector = isinstance(layer, QgsVectorLayer)
    is_valid = layer.isValid()
    localized = localized_source(layer, opened)
    is_localized = localized is not None
    layer_type = compat.enum_value(layer.type())
    geometry_type = compat.enum_value(QgsWkbTypes.geometryType(layer.wkbType())) if is_vector else None
    error_summary, error_message = error_texts(layer.error())
    data = {
        "id": layer.id(),
        "name": layer.name(),
        "crs": layer.crs().authid(),
        "type": layer_type,
        "type_name": LAYER_TYPE_NAMES.get(layer_type, str(layer_type)),
        "wkb_type": compat.enum_value(layer.wkbType()) if is_vector else None,
        "wkb_type_name": QgsWkbTypes.displayString(layer.wkbType()) if is_vector else None,
        "geom_type": geometry_type,
        "geom_type_name": GEOMETRY_TYPE_NAMES.get(geometry_type) if is_vector else None,
        "is_valid": is_valid,
        "is_localized": is_localized,
        "datasource": datasource(layer, opened),
        "filename": _filename(layer, opened, localized),
        "provider_name": layer.providerType(),
        "error_code": _error_code(layer, is_localized),
        "error_summary": error_summary,
        "error_message": error_message,
        "provider_error_summary": None,
        "provider_error_message": None,
        "qfs_action": plain(layer.customProperty("QFieldSync/action")),
        "qfs_cloud_action": plain(layer.customProperty("QFieldSync/cloud_action")),
        "qfs_is_geometry_locked": plain(layer.customProperty("QFieldSync/is_geometry_locked")),
        "qfs_photo_naming": plain(layer.customProperty("QFieldSync/photo_naming")),
        "qfs_unsupported_source_pk": plain(layer.customProperty("QFieldSync/unsupported_source_pk")),
        "qfc_source_data_pk_name": source_pk_name(layer) if is_vector and is_valid else "",
        "feature_count": _feature_count(layer) if is_vector and is_valid else None,
        "fields": fields_data(layer) if is_vector else None,
    }
    refusal = opened.refused.get(layer.id())
    if refusal is not None:
        data.update(provider_name=refusal.provider, error_code=refusal.code,
                    error_summary=refusal.reason, error_message="", provider_error_summary=refusal.reason,
                    provider_error_message="")
    elif not is_valid:
        localized_file = data["filename"] if is_localized else ""
        data.update(_invalid_layer_reasons(layer, opened, error_summary, localized_file))
    return data


def source_pk_name(layer: QgsVectorLayer) -> str:
    """The field whose value identifies a feature in deltas (`sourcePk`): the provider's single
    primary key, else a field named `fid`; "" when there is none or it is composite."""
    fields = layer.fields()
    pk_indexes = layer.primaryKeyAttributes()
    if len(pk_indexes) > 1:
        return ""
    if pk_indexes:
        name = fields.at(pk_indexes[0]).name()
    else:
        name = next((f.name() for f in fields if f.name().lower() == "fid"), "")
    return "" if "," in name else name


def decoded_source(layer: QgsMapLayer) -> dict[str, Any]:
    """The parts of a layer's source as its provider reads them (`path`, `layerName`, `table`,
    `subset`...); empty for providers that cannot tell."""
    metadata = QgsProviderRegistry.instance().providerMetadata(layer.providerType())
    return dict(metadata.decodeUri(layer.source())) if metadata else {}


def layer_file(layer: QgsMapLayer) -> str:
    """The absolute path of the file a layer reads, "" for non-file sources (databases, web)."""
    return decoded_source(layer).get("path") or ""


def datasource(layer: QgsMapLayer, opened: OpenedProject) -> str:
    """The layer's source as the project file spells it (relative paths), without password."""
    refusal = opened.refused.get(layer.id())
    source = refusal.datasource if refusal is not None else opened.bad_layer_sources.get(layer.id())
    if source is None:
        context = QgsReadWriteContext()
        context.setPathResolver(opened.project.pathResolver())
        source = layer.encodedSource(layer.source(), context)
    return QgsDataSourceUri.removePassword(source)


def localized_source(layer: QgsMapLayer, opened: OpenedProject) -> str | None:
    """The layer's source as `localized:<path>` when it lies in a localized data path (a shared
    dataset), whether QGIS found it there or not; None for any other layer."""
    refusal = opened.refused.get(layer.id())
    raw = refusal.datasource if refusal is not None else opened.bad_layer_sources.get(layer.id())
    if raw is not None:
        return raw if is_localized_source(raw) else None
    relative = QgsApplication.localizedDataPathRegistry().localizedPath(layer.source())
    return f"localized:{relative}" if relative else None


def is_localized_source(datasource: str) -> bool:
    """A source in a "localized" data path: a dataset shared between projects, which the server
    does not hold, so QField fetches it from the shared datasets project."""
    return datasource.startswith(_LOCALIZED_PREFIXES) or "url=file:localized:" in datasource


def project_relative(path: str, directory: Path) -> str:
    """`path` relative to the project directory when it lies inside it, else unchanged."""
    relative = os.path.relpath(path, directory)
    return path if relative.startswith("..") else Path(relative).as_posix()


def error_texts(error: QgsError) -> tuple[str, str]:
    """Summary and message of a QGIS error. `summary()` of an empty error crashes QGIS 3.22."""
    if not error.messageList():
        return "", ""
    return error.summary(), error.message()


def fields_data(layer: QgsVectorLayer) -> list[dict[str, Any]]:
    fields = []
    for index, field in enumerate(layer.fields()):
        constraints = field.constraints()
        default = layer.defaultValueDefinition(index)
        widget = layer.editorWidgetSetup(index)
        not_null = _constraint(constraints, QgsFieldConstraints.ConstraintNotNull)
        unique = _constraint(constraints, QgsFieldConstraints.ConstraintUnique)
        expression = _constraint(constraints, QgsFieldConstraints.ConstraintExpression)
        fields.append({
            "name": field.name(),
            "alias": layer.attributeAlias(index),
            "comment": field.comment(),
            "type": field.typeName(),
            "length": field.length(),
            "precision": field.precision(),
            "is_not_null": not_null != "not_set",
            "constraint_strength": not_null,
            "constraint_expression": constraints.constraintExpression(),
            "constraint_expression_description": constraints.constraintDescription(),
            "constraint_expression_strength": expression,
            "is_unique": unique != "not_set",
            "is_unique_strength": unique,
            "default_value": default.expression() or None,
            "set_default_value_on_update": default.applyOnUpdate(),
            "widget_type": widget.type(),
            "widget_config": plain(widget.config()),
        })
    return fields


def plain(value: Any) -> Any:
    """A QGIS setting value as plain JSON data (QGIS's NULL becomes None)."""
    if isinstance(value, QVariant):
        return None if value.isNull() else plain(value.value())
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _constraint(constraints: QgsFieldConstraints, kind: Any) -> str:
    """The strength of one kind of constraint on a field, "not_set" when it has none."""
    if compat.enum_value(constraints.constraintOrigin(kind)) == 0:
        return "not_set"
    return _STRENGTH_NAMES.get(compat.enum_value(constraints.constraintStrength(kind)), "not_set")


def _feature_count(layer: QgsVectorLayer) -> int | None:
    count = layer.featureCount()
    return count if count >= 0 else None


def _filename(layer: QgsMapLayer, opened: OpenedProject, localized_source: str | None) -> str:
    if localized_source is not None:
        path = localized_source.split("|")[0]
        return path[path.index("localized:") + len("localized:"):]
    path = layer_file(layer)
    return project_relative(path, opened.directory) if path else ""


def _error_code(layer: QgsMapLayer, is_localized: bool) -> str:
    if layer.isValid():
        return "no_error"
    provider = layer.dataProvider()
    if provider is None:
        return "missing_dataprovider"
    if provider.isValid():
        return "invalid_layer"
    return "localized_dataprovider" if is_localized else "invalid_dataprovider"


def _invalid_layer_reasons(layer: QgsMapLayer, opened: OpenedProject, error_summary: str,
                           localized_file: str) -> dict[str, Any]:
    """Provider error texts, and where QGIS gives no reason (it often does not), the likely one."""
    provider = layer.dataProvider()
    if provider is None:
        reason = f'The data provider "{layer.providerType()}" is not available.'
        return {"error_summary": error_summary or reason, "provider_error_summary": reason,
                "provider_error_message": ""}
    provider_summary, provider_message = error_texts(provider.error())
    if localized_file:
        provider_summary = (f'File "{localized_file}" is in a localized data path, which the server does not'
                            " hold: QField reads it from the shared datasets.")
    provider_summary = provider_summary or _likely_reason(layer, provider.uri(), opened)
    return {"error_summary": error_summary or provider_summary, "provider_error_summary": provider_summary,
            "provider_error_message": provider_message}


def _likely_reason(layer: QgsMapLayer, uri: QgsDataSourceUri, opened: OpenedProject) -> str:
    if uri.service():
        return f'Unable to connect to service "{uri.service()}".'
    if uri.host():
        return f'Unable to connect to host "{uri.host()}".'
    path = layer_file(layer)
    if path and not os.path.exists(path):
        return f'File "{project_relative(path, opened.directory)}" missing.'
    return "QGIS could not read the layer's data source."
