"""What a project file may be called, and what kind of file a name stands for.

Names are relative paths with `/` between folders. The rules follow QFieldCloud's (reference
§4.3, §4.6): they also shut out path traversal (`..`, absolute paths), NUL and backslashes.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import PurePosixPath
from typing import IO
from xml.etree.ElementTree import ParseError, XMLPullParser

from .errors import InvalidQgisProjectFile, ValidationError
from .models import Project

MAX_NAME_CHARS = 255
MAX_NAME_BYTES = 1024
FORBIDDEN_IN_SEGMENT = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
WINDOWS_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])$", re.IGNORECASE)
QGIS_SUFFIXES = (".qgs", ".qgz")
DEFAULT_ATTACHMENT_DIRS = ("DCIM",)
QGIS_HEAD_BYTES = 64 * 1024


def validate_name(name: str) -> str:
    if not name or name != name.strip():
        raise ValidationError("A file name cannot be empty or start or end with whitespace.")
    if len(name) > MAX_NAME_CHARS or len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ValidationError(f"A file name is at most {MAX_NAME_CHARS} characters.")
    for segment in name.split("/"):
        if not segment:
            raise ValidationError("A file name is a relative path without empty folder names.")
        if FORBIDDEN_IN_SEGMENT.search(segment):
            raise ValidationError('A file name cannot contain <>:"\\|?*, NUL or control characters.')
        if segment.endswith((".", " ")):
            raise ValidationError("No part of a file name may end with a dot or a space (no `..`).")
        if WINDOWS_RESERVED.match(segment):
            raise ValidationError(f"`{segment}` is a reserved name.")
    return name


def is_qgis_file(name: str) -> bool:
    return name.lower().endswith(QGIS_SUFFIXES)


def attachment_dirs(project: Project) -> tuple[str, ...]:
    return tuple(project.attachment_dirs or DEFAULT_ATTACHMENT_DIRS)


def is_attachment(project: Project, name: str) -> bool:
    # A plain prefix match, as QFieldCloud does: `DCIMx.txt` counts too.
    return name.startswith(attachment_dirs(project))


def is_restricted(project: Project, name: str) -> bool:
    """Files only managers may change when the project restricts its project files."""
    if not project.has_restricted_projectfiles:
        return False
    if is_qgis_file(name):
        return True
    if not project.the_qgis_file_name:
        return False
    stem = str(PurePosixPath(project.the_qgis_file_name).with_suffix(""))
    return name in (f"{stem}_attachments.zip", f"{stem}.qgd", f"{stem}.qml")


def _qgis_root_of(stream: IO[bytes]) -> str | None:
    parser = XMLPullParser(events=("start",))
    try:
        while chunk := stream.read(QGIS_HEAD_BYTES):
            parser.feed(chunk)
            for _, element in parser.read_events():
                return element.tag
    except ParseError:
        return None
    return None


def check_qgis_project(name: str, stream: IO[bytes]) -> None:
    """A `.qgs` must be QGIS XML, a `.qgz` a zip holding one; 400 otherwise. Rewinds `stream`."""
    try:
        if name.lower().endswith(".qgz"):
            with zipfile.ZipFile(stream) as archive:
                members = [m for m in archive.namelist() if m.lower().endswith(".qgs")]
                root = _qgis_root_of(io.BufferedReader(archive.open(members[0]))) if members else None
        else:
            root = _qgis_root_of(stream)
    except (zipfile.BadZipFile, OSError):
        root = None
    finally:
        stream.seek(0)
    if root != "qgis":
        raise InvalidQgisProjectFile(f"`{name}` is not a valid QGIS project file.")
