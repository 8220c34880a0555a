"""Reading a project with QGIS, as the job cores see it: the one way a core opens a project file.

The file is first checked as a document (project_file) and its layers' sources (sources); QGIS then
reads it with every refused layer pointing nowhere, so that nothing the checks refused is ever
opened. Those layers are invalid for QGIS; `OpenedProject.refused` keeps what they named and why.

A job process handles one project, so the cores use the `QgsProject.instance()` singleton (parts of
QGIS, such as value relations and expressions, look layers up there); each core clears it when
done (`qgis_app.clear_project`).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree
from qgis.core import QgsApplication, QgsMapSettings, QgsProject, QgsProjectBadLayerHandler
from qgis.PyQt.QtXml import QDomDocument

from chalicelib.rules import job_hosts
from job_containers.cores import compat, project_file
from job_containers.cores.feedback import InvalidProjectFile
from job_containers.cores.project_file import ProjectFileHead
from job_containers.cores.project_xml import ProjectXml
from job_containers.cores.sources import Folders, SourceChecker

# The provider a refused layer gets in the copy QGIS reads: none exists by that name, so QGIS
# opens nothing and marks the layer invalid.
REFUSED_PROVIDER = "qfc-refused"


@dataclass(frozen=True)
class Refusal:
    """A layer whose source was refused: what the project file names, and why."""

    provider: str
    datasource: str
    reason: str
    # The layer's `error_code` in reports: `refused_datasource`, or `invalid_dataprovider` for a
    # source that could not have been opened anyway.
    code: str


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
    # Layer id -> the refused source, for layers QGIS was not allowed to open.
    refused: dict[str, Refusal] = field(default_factory=dict)
    head: ProjectFileHead = field(default_factory=ProjectFileHead)

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


def open_project(path: Path, *, for_editing: bool = False,
                 head: ProjectFileHead | None = None) -> OpenedProject:
    """Check `path` (unless `head` is what its check found) and read it into the project
    singleton; invalid and refused layers are recorded, not fatal. `for_editing`: layers are to
    be edited (apply_deltas), so every part of the project is read, not only what a look at it
    needs."""
    head = head or project_file.check_project_file(path)
    refusals = _refusals(path, head)
    project = QgsProject.instance()
    project.clear()
    opened = OpenedProject(project, path, refused=refusals, head=head)
    project.setBadLayerHandler(_BadLayerRecorder(opened.bad_layer_sources))

    def keep_canvas(document: QDomDocument) -> None:
        opened.canvas = _main_canvas(document)

    flags = (QgsProject.ReadFlags(QgsProject.FlagDontLoadLayouts) if for_editing
             else compat.inspection_read_flags())
    project.readProject.connect(keep_canvas)
    try:
        with _checked_copy(path, refusals, head):
            read = project.read(str(path), flags)
    finally:
        project.readProject.disconnect(keep_canvas)
    if not read:
        reason = project.error()
        project.clear()
        raise InvalidProjectFile(f'Unable to open project with QGIS: "{path.name}". {reason}'.strip())
    return opened


def _refusals(path: Path, head: ProjectFileHead) -> dict[str, Refusal]:
    registered = QgsApplication.localizedDataPathRegistry().paths()
    folders = Folders(path.parent, Path(registered[0]) if registered else None)
    reasons = SourceChecker(folders, job_hosts.current()).refusals(head.layers)
    return {layer.id: Refusal(layer.provider, layer.datasource, str(refusal), refusal.code)
            for layer in head.layers if (refusal := reasons.get(layer.id)) is not None}


@contextmanager
def _checked_copy(path: Path, refusals: dict[str, Refusal], head: ProjectFileHead) -> Iterator[None]:
    """While QGIS reads `path`: the project with its refused layers pointing nowhere and no group
    read from another project file. The file keeps its name (QGIS derives the auxiliary storage,
    `@project_basename` and relative paths from it); the original is put back afterwards."""
    if not refusals and not head.embeds_groups:
        yield
        return
    xml = ProjectXml(project_file.read_project_xml(path))
    for layer_id in refusals:
        xml.point_nowhere(layer_id, REFUSED_PROVIDER)
    xml.unembed_groups()
    aside = path.with_name(f".{path.name}.original")
    os.replace(path, aside)
    try:
        if path.suffix.lower() == ".qgz":
            _write_qgz(aside, path, xml)
        else:
            xml.write(path)
        yield
    finally:
        os.replace(aside, path)


def _write_qgz(original: Path, target: Path, xml: ProjectXml) -> None:
    """`original` with its project document replaced by `xml`; every other member as it was."""
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for member in source.infolist():
            if member.filename.lower().endswith(".qgs"):
                copy.writestr(member.filename, etree.tostring(xml.root.getroottree(), encoding="UTF-8"))
            else:
                copy.writestr(member, source.read(member))


def _main_canvas(document: QDomDocument) -> QgsMapSettings | None:
    canvases = document.elementsByTagName("mapcanvas")
    for index in range(canvases.count()):
        element = canvases.at(index).toElement()
        if element.attribute("name") == "theMapCanvas":
            settings = QgsMapSettings()
            settings.readXml(element)
            return settings
    return None
