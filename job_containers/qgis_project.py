"""Reading a project with QGIS, as the job cores see it.

A job process handles one project, so the cores use the `QgsProject.instance()` singleton (parts of
QGIS, such as value relations and expressions, look layers up there); each core clears it when
done (`qgis_app.clear_project`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qgis.core import QgsMapSettings, QgsProject, QgsProjectBadLayerHandler
from qgis.PyQt.QtXml import QDomDocument

from job_containers import compat
from job_containers.feedback import InvalidProjectFile


@dataclass
class OpenedProject:
    project: QgsProject
    path: Path
    # Layer id -> datasource exactly as written in the file, for the layers QGIS could not load:
    # QGIS rewrites the source of such layers, which hides e.g. a "localized:" prefix.
    bad_layer_sources: dict[str, str] = field(default_factory=dict)
    # The main map canvas as last saved (`theMapCanvas`): extent, CRS. None for projects saved
    # without the QGIS desktop.
    canvas: QgsMapSettings | None = None

    @property
    def directory(self) -> Path:
        return self.path.parent


class _BadLayerRecorder(QgsProjectBadLayerHandler):
    def __init__(self, sources: dict[str, str]):
        super().__init__()
        self.sources = sources

    def handleBadLayers(self, layers) -> None:  # noqa: N802 (QGIS's name)
        for node in layers:
            layer_id = node.namedItem("id").toElement().text()
            self.sources[layer_id] = node.namedItem("datasource").toElement().text()


def open_project(path: Path) -> OpenedProject:
    """Read `path` into the project singleton; invalid layers are recorded, not fatal."""
    project = QgsProject.instance()
    project.clear()
    opened = OpenedProject(project, path)
    project.setBadLayerHandler(_BadLayerRecorder(opened.bad_layer_sources))

    def keep_canvas(document: QDomDocument) -> None:
        opened.canvas = _main_canvas(document)

    project.readProject.connect(keep_canvas)
    try:
        read = project.read(str(path), compat.inspection_read_flags())
    finally:
        project.readProject.disconnect(keep_canvas)
    if not read:
        reason = project.error()
        project.clear()
        raise InvalidProjectFile(f'Unable to open project with QGIS: "{path.name}". {reason}'.strip())
    return opened


def _main_canvas(document: QDomDocument) -> QgsMapSettings | None:
    canvases = document.elementsByTagName("mapcanvas")
    for index in range(canvases.count()):
        element = canvases.at(index).toElement()
        if element.attribute("name") == "theMapCanvas":
            settings = QgsMapSettings()
            settings.readXml(element)
            return settings
    return None
