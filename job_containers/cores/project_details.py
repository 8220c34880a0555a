"""The `project_details` the API stores for a processed project (QFieldCloud's `ProjectDetails`)."""

from __future__ import annotations

from typing import Any, TypedDict

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCsException,
    QgsGeometry,
    QgsProject,
    QgsRectangle,
)

from job_containers.cores import layers
from job_containers.cores.qgis_project import OpenedProject

WGS84 = "EPSG:4326"


class ProjectDetails(TypedDict):
    background_color: str
    extent: str
    area_of_interest: str
    crs: str
    project_name: str
    layers_by_id: dict[str, dict[str, Any]]
    ordered_layer_ids: list[str]
    attachment_dirs: list[str]
    data_dirs: list[str]
    qgis_version: str
    map_themes: list[str]


def project_details(opened: OpenedProject, qgis_version: str) -> ProjectDetails:
    """`qgis_version` is that of the QGIS which saved the file, not the one running here."""
    project = opened.project
    layers_by_id = layers.layers_by_id(opened)
    canvas_extent = ""
    if opened.canvas is not None:
        canvas_extent = wgs84_wkt(opened.canvas.extent(), opened.canvas.destinationCrs(), project)
    return {
        "background_color": project.backgroundColor().name(),
        "extent": canvas_extent,
        "area_of_interest": _area_of_interest_wkt(project),
        "crs": project.crs().authid(),
        "project_name": project.title(),
        "layers_by_id": layers_by_id,
        "ordered_layer_ids": list(layers_by_id),
        "attachment_dirs": attachment_dirs(project),
        "data_dirs": data_dirs(project),
        "qgis_version": qgis_version,
        "map_themes": list(project.mapThemeCollection().mapThemes()),
    }


def attachment_dirs(project: QgsProject) -> list[str]:
    """Where QField stores photos and other attachments; not part of a package."""
    return project.readListEntry("QFieldSync", "attachmentDirs", ["DCIM"])[0]


def data_dirs(project: QgsProject) -> list[str]:
    """Folders of extra files the project needs on the device (copied into the package)."""
    return project.readListEntry("QFieldSync", "dataDirs", [])[0]


def wgs84_wkt(extent: QgsRectangle, crs: QgsCoordinateReferenceSystem, project: QgsProject) -> str:
    """`extent` reprojected to WGS84 as a WKT polygon, "" when that has no sensible answer
    (empty extent, unknown CRS, or a result outside the world)."""
    target = QgsCoordinateReferenceSystem(WGS84)
    if extent.isNull() or extent.isEmpty() or not extent.isFinite() or not crs.isValid():
        return ""
    try:
        reprojected = QgsCoordinateTransform(crs, target, project).transformBoundingBox(extent)
    except QgsCsException:
        return ""
    if not reprojected.isFinite() or not target.bounds().contains(reprojected):
        return ""
    return reprojected.asWktPolygon()


def area_of_interest(project: QgsProject) -> tuple[QgsRectangle, QgsCoordinateReferenceSystem] | None:
    """The bounding box of the area QFieldSync was told to focus on, and its CRS; None if unset."""
    wkt = project.readEntry("qfieldsync", "areaOfInterest", "")[0]
    crs = QgsCoordinateReferenceSystem(project.readEntry("qfieldsync", "areaOfInterestCrs", "")[0])
    if not wkt or not crs.isValid():
        return None
    return QgsGeometry.fromWkt(wkt).boundingBox(), crs


def _area_of_interest_wkt(project: QgsProject) -> str:
    area = area_of_interest(project)
    return wgs84_wkt(*area, project) if area else ""
