"""Checking a QGIS project file before QGIS reads it, and reading its XML safely.

QGIS's own XML reader expands entities, so a hostile `.qgs` could make the worker read local files
(XXE) or blow up its memory (billion laughs). Every project is therefore parsed first, fully, with
expat set to refuse any document type subset or entity declaration (QGIS never writes one) and to
never fetch anything external. A `.qgz` is a zip holding exactly one `.qgs`, checked the same way;
its declared sizes are capped before anything is inflated, and Python's zip reader stops at the
declared size and checks the CRC, so a lying header cannot inflate more. Only the compressions
QGIS writes are accepted: QGIS 3.22 crashes on an LZMA-compressed `.qgz`.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from xml.parsers import expat

from chalicelib.rules import qgz_limits
from job_containers.cores.feedback import InvalidProjectFile

PROJECT_SUFFIXES = (".qgs", ".qgz")
_QGIS_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_CHUNK_BYTES = 1024**2


@dataclass(frozen=True)
class LayerSource:
    """A map layer as the project file declares it, before QGIS reads anything."""

    id: str
    provider: str
    datasource: str
    # Read from another project file (QGIS's "embedded" layers), not from this one.
    embedded: bool = False


@dataclass
class ProjectFileHead:
    """What the safety check read on its way through the file: the root element's attributes
    (`version`, `projectname`, ...) and every map layer's source."""

    attributes: dict[str, str] = field(default_factory=dict)
    layers: list[LayerSource] = field(default_factory=list)
    # Layer tree groups read from another project file.
    embeds_groups: bool = False


def check_project_file(path: Path) -> ProjectFileHead:
    """Raise unless `path` is a QGIS project QGIS may safely read; what it declares."""
    if not path.is_file():
        raise FileNotFoundError(f'Project file "{path.name}" does not exist.')
    suffix = path.suffix.lower()
    if suffix not in PROJECT_SUFFIXES:
        raise InvalidProjectFile(
            f'Project file "{path.name}" has the unknown extension "{path.suffix}";'
            " a QGIS project is a .qgs or .qgz file."
        )
    if suffix == ".qgs":
        return _check_xml(path.name, lambda: path.open("rb"))
    with _open_qgz(path) as archive:
        member = _qgs_member(path.name, archive)
        return _check_xml(f"{path.name}/{member.filename}", lambda: archive.open(member))


def read_project_xml(path: Path) -> bytes:
    """The XML of a project file already accepted by `check_project_file`."""
    if path.suffix.lower() == ".qgs":
        return path.read_bytes()
    with _open_qgz(path) as archive:
        return archive.read(_qgs_member(path.name, archive))


def read_qgz_auxiliary_storage(path: Path) -> bytes | None:
    """The auxiliary storage (`.qgd`, label positions and the like) inside a `.qgz`, if any."""
    if path.suffix.lower() != ".qgz":
        return None
    with _open_qgz(path) as archive:
        members = [m for m in archive.infolist() if m.filename.lower().endswith(".qgd")]
        return archive.read(members[0]) if len(members) == 1 else None


def qgis_version(root_attributes: dict[str, str]) -> str:
    """`X.Y.Z` of the QGIS that saved the project (`version="3.22.16-Białowieża"`), or ""."""
    match = re.match(r"\d+\.\d+\.\d+", root_attributes.get("version", ""))
    return match.group(0) if match else ""


@contextmanager
def _open_qgz(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        with zipfile.ZipFile(path) as archive:
            _check_members(path.name, archive)
            yield archive
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError) as error:
        raise InvalidProjectFile(f'Project file "{path.name}" is not a valid .qgz archive: {error}') from None


def _check_members(name: str, archive: zipfile.ZipFile) -> None:
    members = archive.infolist()
    for member in members:
        parts = PurePosixPath(member.filename.replace("\\", "/")).parts
        if member.filename.startswith(("/", "\\")) or ".." in parts:
            raise InvalidProjectFile(f'Project file "{name}" holds an unsafe path "{member.filename}".')
        if member.compress_type not in _QGIS_COMPRESSIONS:
            raise InvalidProjectFile(
                f'Project file "{name}" uses a compression QGIS cannot read ("{member.filename}").'
            )
    if len(members) > qgz_limits.MAX_MEMBERS:
        raise InvalidProjectFile(
            f'Project file "{name}" holds more than {qgz_limits.MAX_MEMBERS} files; refused.')
    if sum(member.file_size for member in members) > qgz_limits.MAX_UNPACKED_BYTES:
        raise InvalidProjectFile(f'Project file "{name}" would unpack to more than'
                                 f" {qgz_limits.MAX_UNPACKED_BYTES // 1024**2} MiB; refused.")
    for member in members:
        if member.file_size > qgz_limits.RATIO_FROM_BYTES and \
                member.file_size > qgz_limits.MAX_RATIO * max(member.compress_size, 1):
            raise InvalidProjectFile(f'Project file "{name}" holds "{member.filename}", which would unpack'
                                     f" to more than {qgz_limits.MAX_RATIO} times its size, as zip bombs do;"
                                     " refused.")


def _qgs_member(name: str, archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    members = [m for m in archive.infolist() if m.filename.lower().endswith(".qgs")]
    if len(members) != 1:
        raise InvalidProjectFile(
            f'Project file "{name}" must hold exactly one .qgs project, it holds {len(members)}.'
        )
    return members[0]


def _check_xml(name: str, open_stream: Callable[[], BinaryIO]) -> ProjectFileHead:
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
    head = ProjectFileHead()
    layers = _LayerCollector(head, parser)

    def refuse(*_: object) -> None:
        raise InvalidProjectFile(
            f'Project file "{name}" declares XML entities or a document type subset'
            f" (line {parser.CurrentLineNumber}, column {parser.CurrentColumnNumber + 1}),"
            " which QGIS projects never do; refused for safety."
        )

    def on_doctype(_name: str, _system_id: str, _public_id: str, has_internal_subset: bool) -> None:
        if has_internal_subset:
            refuse()

    def on_root(tag: str, attributes: dict[str, str]) -> None:
        if tag != "qgis":
            raise InvalidProjectFile(f'Project file "{name}" is not a QGIS project (root <{tag}>).')
        head.attributes = attributes
        parser.StartElementHandler = layers.start  # the root is checked once: from here, collect
        layers.start(tag, attributes)

    parser.StartDoctypeDeclHandler = on_doctype
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = on_root
    parser.EndElementHandler = layers.end
    try:
        with open_stream() as stream:
            while chunk := stream.read(_CHUNK_BYTES):
                parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as error:
        context = _line_start(open_stream, error.lineno, error.offset)
        raise InvalidProjectFile(
            f'Project file "{name}" is not a valid XML document: {expat.ErrorString(error.code)}'
            f" on line {error.lineno}, column {error.offset + 1}{context}."
        ) from None
    return head


class _LayerCollector:
    """Collects `qgis/projectlayers/maplayer` with its `id`, `provider` and `datasource` while
    the document streams through the safety check: the sources are known before QGIS reads any
    of them, at no extra parse. Its handlers run for every element of what can be a document of
    hundreds of MB, so they do as little as they can, and text is only collected in the three
    elements wanted."""

    _FIELDS = ("id", "provider", "datasource")

    def __init__(self, head: ProjectFileHead, parser):
        self.head, self.parser = head, parser
        self.depth = 0
        self.in_layers = False
        self.layer: dict[str, str] | None = None
        self.embedded = False
        self.field: str | None = None

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        depth = self.depth = self.depth + 1
        if depth == 4:
            if self.layer is not None and tag in self._FIELDS:
                self.field = tag
                self.layer[tag] = ""
                self.parser.CharacterDataHandler = self.text
        elif depth == 3:
            if self.in_layers and tag == "maplayer":
                self.embedded = attributes.get("embedded") == "1"
                self.layer = {"id": attributes.get("id", "")} if self.embedded else {}
        elif depth == 2:
            self.in_layers = tag == "projectlayers"
        if tag == "layer-tree-group" and attributes.get("embedded") == "1":
            self.head.embeds_groups = True

    def text(self, data: str) -> None:
        self.layer[self.field] += data

    def end(self, _tag: str) -> None:
        depth = self.depth
        if depth == 4 and self.field is not None:
            self.parser.CharacterDataHandler = None
            self.field = None
        elif depth == 3 and self.layer is not None:
            layer = self.layer
            self.head.layers.append(LayerSource(layer.get("id", ""), layer.get("provider", ""),
                                                layer.get("datasource", ""), self.embedded))
            self.layer = None
        self.depth = depth - 1


def _line_start(open_stream: Callable[[], BinaryIO], line_number: int, column: int) -> str:
    """The beginning of the faulty line, up to the error, with anything unprintable masked."""
    with open_stream() as stream:
        for number, line in enumerate(stream, start=1):
            if number == line_number:
                text = line[:column].decode("utf-8", "replace").strip()
                text = "".join(c if c.isprintable() else "?" for c in text)[-80:]
                return f', after "{text}"' if text else ""
            if number > line_number:
                break
    return ""
