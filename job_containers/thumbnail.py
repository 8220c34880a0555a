"""The project thumbnail: the saved main map canvas rendered into a small PNG."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsMapLayer, QgsMapRendererCustomPainterJob, QgsMapSettings, QgsProject
from qgis.PyQt.QtCore import QSize, QTimer
from qgis.PyQt.QtGui import QImage, QPainter

from job_containers.qgis_project import OpenedProject

SIZE_PX = 100
# Past this, rendering is cancelled and whatever was drawn is kept: a slow web layer must not
# hold the job.
TIMEOUT_S = 10


def render_thumbnail(opened: OpenedProject, target: Path) -> bool:
    """Write the thumbnail; False when the project has no extent to show."""
    settings = _map_settings(opened)
    if settings.extent().isEmpty():
        settings.setExtent(settings.fullExtent())
    if settings.extent().isEmpty():
        return False  # QGIS would render forever

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


def _visible_layers(project: QgsProject) -> list[QgsMapLayer]:
    """Layers the canvas shows, top first: the legend's drawing order, checked layers only."""
    root = project.layerTreeRoot()
    return [
        layer for layer in root.layerOrder()
        if layer.isValid() and (node := root.findLayer(layer.id())) is not None and node.isVisible()
    ]
