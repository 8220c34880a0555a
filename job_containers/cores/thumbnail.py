"""The project thumbnail: the saved main map canvas rendered into a small PNG."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCsException,
    QgsMapLayer,
    QgsMapRendererCustomPainterJob,
    QgsMapSettings,
    QgsProject,
    QgsRectangle,
)
from qgis.PyQt.QtCore import QSize, QTimer
from qgis.PyQt.QtGui import QImage, QPainter

from job_containers.cores.project_details import WGS84
from job_containers.cores.qgis_project import OpenedProject

SIZE_PX = 100
# Past this, rendering is cancelled and whatever was drawn is kept: a slow web layer must not
# hold the job.
TIMEOUT_S = 10


def render_thumbnail(opened: OpenedProject, target: Path) -> bool:
    """Write the thumbnail; False when the project has no extent to show."""
    settings = _map_settings(opened)
    extent = settings.extent() if not settings.extent().isEmpty() else settings.fullExtent()
    extent = _clipped_to_crs_bounds(extent, settings.destinationCrs(), opened.project)
    if extent.isEmpty():
        return False  # QGIS would render forever
    settings.setExtent(extent)

    image = QImage(settings.outputSize(), QImage.Format_ARGB32)
    image.fill(settings.backgroundColor())
    painter = QPainter(image)
    job = QgsMapRendererCustomPainterJob(settings, painter)
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(job.cancel)
    job.start()
    timer.start(TIMEOUT_S * 1000)
    job.waitForFinishedWithEventLoop()
    timer.stop()
    painter.end()
    return image.save(str(target), "PNG")


def _map_settings(opened: OpenedProject) -> QgsMapSettings:
    project = opened.project
    settings = QgsMapSettings(opened.canvas) if opened.canvas is not None else QgsMapSettings()
    if opened.canvas is None:
        settings.setDestinationCrs(project.crs())
    settings.setTransformContext(project.transformContext())
    settings.setBackgroundColor(project.backgroundColor())
    settings.setRotation(0)
    settings.setOutputSize(QSize(SIZE_PX, SIZE_PX))
    settings.setLayers(_visible_layers(project))
    return settings


def _clipped_to_crs_bounds(extent: QgsRectangle, crs: QgsCoordinateReferenceSystem,
                           project: QgsProject) -> QgsRectangle:
    """The part of `extent` inside the CRS's area of use. A saved canvas can reach far beyond it
    (latitude 1000 in Web Mercator), and QGIS 3.22 then renders a web tile layer forever,
    deaf to cancelling."""
    to_crs = QgsCoordinateTransform(QgsCoordinateReferenceSystem(WGS84), crs, project)
    try:
        bounds = to_crs.transformBoundingBox(crs.bounds())
    except QgsCsException:
        return extent
    return extent.intersect(bounds) if bounds.isFinite() and not bounds.isEmpty() else extent


def _visible_layers(project: QgsProject) -> list[QgsMapLayer]:
    """Layers the canvas shows, top first: the legend's drawing order, checked layers only."""
    root = project.layerTreeRoot()
    return [
        layer for layer in root.layerOrder()
        if layer.isValid() and (node := root.findLayer(layer.id())) is not None and node.isVisible()
    ]
