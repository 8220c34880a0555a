"""The offline copy of the layers QField edits offline: one GeoPackage, `data.gpkg`, beside the
packaged project.

Layers that read the same source share one table holding the features any of them shows (the OR
of their filters), so an edit on the device shows in each of them.

Primary keys are stable: a packaged feature carries its source primary key, which QField sends
back as `sourcePk` in deltas. Where the key is the source's own feature id (a GeoPackage `fid`) it
stays the feature id; otherwise it is copied as an ordinary column and the table gets a feature id
column of its own (`fid`, or `fid_1`, ... when taken), which forms should hide.

The file is byte-identical for identical input: GeoPackage timestamps are pinned, tables are
written in a fixed order, and rows in source order (key order where a database decides).

Sources OGR reads (GeoPackage, GeoJSON, Shapefile, CSV, ...) are copied by GDAL in one streaming
transaction per table; other providers (PostGIS, Spatialite, WFS, ...) through QGIS.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from osgeo import gdal
from qgis.core import (
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsExpression,
    QgsFeatureRequest,
    QgsProject,
    QgsProviderRegistry,
    QgsRectangle,
    QgsVectorFileWriter,
    QgsVectorLayer,
)

from job_containers.cores import layers

GPKG_NAME = "data.gpkg"
# Stands in for "now" in `gpkg_contents.last_change`: a package of unchanged data must not change.
PINNED_TIMESTAMP = "2000-01-01T00:00:00Z"
_OGR_URI_PARTS = {"path", "layerName", "layerId", "subset"}


@dataclass(frozen=True)
class OfflineLayer:
    layer: QgsVectorLayer
    pk: str  # the source primary key field (see layers.source_pk_name)


@dataclass(frozen=True)
class OfflineTable:
    name: str
    fid_column: str
    # The feature id column is the table's own, not a field of the source: hide it in forms.
    fid_is_new: bool


def write_offline_gpkg(
    offline_layers: list[OfflineLayer], gpkg: Path, area: QgsRectangle | None, project: QgsProject
) -> dict[str, OfflineTable]:
    """Copy the features of `offline_layers` (only those in `area`, in project CRS, if given) into
    `gpkg`; the table of each layer, by layer id."""
    gpkg.unlink(missing_ok=True)
    groups = _group_by_source(sorted(offline_layers, key=lambda offline: offline.layer.id()))
    named_groups = list(zip(_table_names([group[0].layer for group in groups]), groups, strict=True))
    with _pinned_gdal_timestamp():
        dataset = gdal.GetDriverByName("GPKG").Create(str(gpkg), 0, 0, 0, gdal.GDT_Unknown)
        tables = {name: _copy_with_gdal(dataset, group, name, area, project) for name, group in named_groups}
        dataset = None  # closes the file before QGIS opens it
        for name, group in named_groups:
            if tables[name] is None:
                tables[name] = _copy_with_qgis(gpkg, group, name, area, project)
    return {offline.layer.id(): tables[name] for name, group in named_groups for offline in group}


def _group_by_source(offline_layers: list[OfflineLayer]) -> list[list[OfflineLayer]]:
    groups: dict[tuple[str, str], list[OfflineLayer]] = {}
    for offline in offline_layers:
        groups.setdefault(_source_without_filter(offline.layer), []).append(offline)
    return list(groups.values())


def _source_without_filter(layer: QgsVectorLayer) -> tuple[str, str]:
    parts = layers.decoded_source(layer)
    if not parts:
        return layer.providerType(), layer.source()
    parts = {key: value for key, value in parts.items() if key not in ("subset", "sql")}
    return layer.providerType(), QgsProviderRegistry.instance().encodeUri(layer.providerType(), parts)


def _table_names(source_layers: list[QgsVectorLayer]) -> list[str]:
    """Readable, unique table names: the source table's (or file's) name."""
    names: list[str] = []
    for layer in source_layers:
        parts = layers.decoded_source(layer)
        base = parts.get("layerName") or parts.get("table") or Path(parts.get("path") or "").stem
        base = re.sub(r"\W+", "_", str(base or layer.name())).strip("_") or "layer"
        name, number = base, 1
        while name.lower() in (taken.lower() for taken in names):
            number += 1
            name = f"{base}_{number}"
        names.append(name)
    return names


def _union_filter(group: list[OfflineLayer]) -> str | None:
    """The filter of the shared table: none if any layer shows everything."""
    subsets = list(dict.fromkeys(offline.layer.subsetString() for offline in group))
    if "" in subsets:
        return None
    return " OR ".join(f"({subset})" for subset in subsets)


def _new_fid_column(field_names: list[str]) -> str:
    taken = {name.lower() for name in field_names}
    name, number = "fid", 0
    while name in taken:
        number += 1
        name = f"fid_{number}"
    return name


def _layer_area(layer: QgsVectorLayer, area: QgsRectangle | None, project: QgsProject) -> QgsRectangle | None:
    """`area` in the layer's CRS; None (no limit) for tables without geometry."""
    if area is None or not layer.isSpatial():
        return None
    return QgsCoordinateTransform(project.crs(), layer.crs(), project).transformBoundingBox(area)


def _copy_with_gdal(
    dataset: gdal.Dataset, group: list[OfflineLayer], name: str, area: QgsRectangle | None,
    project: QgsProject,
) -> OfflineTable | None:
    """Copy a source OGR reads as it is; None for any other source."""
    layer, pk = group[0].layer, group[0].pk
    if layer.providerType() != "ogr":
        return None
    parts = layers.decoded_source(layer)
    if {key for key, value in parts.items() if value} - _OGR_URI_PARTS:
        return None  # open options, a geometry type filter, a path inside an archive...
    if any(offline.layer.subsetString().lstrip().upper().startswith("SELECT") for offline in group):
        return None  # a full SQL query, which only QGIS's provider runs
    source = gdal.OpenEx(parts["path"], gdal.OF_VECTOR | gdal.OF_READONLY)
    source_layer = source and (source.GetLayerByName(parts["layerName"]) if parts.get("layerName")
                               else source.GetLayer(int(parts.get("layerId") or 0)))
    if not source_layer:
        return None  # QGIS reads it, GDAL alone does not: let QGIS copy it
    keeps_fid = bool(pk) and source_layer.GetFIDColumn() == pk
    fid_column = pk if keeps_fid else _new_fid_column(layer.dataProvider().fields().names())
    bbox = _layer_area(layer, area, project)
    options = gdal.VectorTranslateOptions(
        options=["-gt", "unlimited", *(["-preserve_fid"] if keeps_fid else [])],
        layers=[source_layer.GetName()],
        layerName=name,
        where=_union_filter(group),
        spatFilter=None if bbox is None else (bbox.xMinimum(), bbox.yMinimum(),
                                             bbox.xMaximum(), bbox.yMaximum()),
        layerCreationOptions=[f"FID={fid_column}"],
    )
    if gdal.VectorTranslate(dataset, source, options=options) is None:
        raise RuntimeError(f'GDAL could not copy layer "{layer.name()}": {gdal.GetLastErrorMsg()}')
    return OfflineTable(name, fid_column, fid_is_new=not keeps_fid)


def _copy_with_qgis(
    gpkg: Path, group: list[OfflineLayer], name: str, area: QgsRectangle | None, project: QgsProject
) -> OfflineTable:
    layer, pk = group[0].layer, group[0].pk
    # A bare layer on the same source: the source's fields only, without the project layer's
    # joins and virtual fields, which the packaged layer keeps defining itself.
    source = QgsVectorLayer(layer.source(), layer.name(), layer.providerType())
    source.setSubsetString(_union_filter(group) or "")
    fields = source.fields()
    fid_column = _new_fid_column(fields.names())
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = name
    options.fileEncoding = "UTF-8"
    options.layerOptions = [f"FID={fid_column}"]
    options.actionOnExistingFile = (QgsVectorFileWriter.CreateOrOverwriteLayer if gpkg.exists()
                                    else QgsVectorFileWriter.CreateOrOverwriteFile)
    writer = QgsVectorFileWriter.create(str(gpkg), fields, source.wkbType(), layer.crs(),
                                        QgsCoordinateTransformContext(), options)
    if writer.hasError() != QgsVectorFileWriter.NoError:
        raise RuntimeError(f'QGIS could not create a table for "{layer.name()}": {writer.errorMessage()}')
    request = QgsFeatureRequest().addOrderBy(QgsExpression.quotedColumnRef(pk))
    bbox = _layer_area(layer, area, project)
    if bbox is not None:
        request.setFilterRect(bbox)
    for feature in source.getFeatures(request):
        if not writer.addFeature(feature):
            raise RuntimeError(f'QGIS could not copy layer "{layer.name()}": {writer.errorMessage()}')
    del writer  # flushes and closes the table
    return OfflineTable(name, fid_column, fid_is_new=True)


@contextmanager
def _pinned_gdal_timestamp() -> Iterator[None]:
    previous = gdal.GetConfigOption("OGR_CURRENT_DATE")
    gdal.SetConfigOption("OGR_CURRENT_DATE", PINNED_TIMESTAMP)
    try:
        yield
    finally:
        gdal.SetConfigOption("OGR_CURRENT_DATE", previous)
