"""What a project file may be called, and what kind of file a name stands for.

Names are relative paths with `/` between folders. The rules follow QFieldCloud's (docs/api.md,
"Files"; docs/security.md, "File names"): they also shut out path traversal (`..`, absolute
paths), NUL and backslashes.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from pathlib import PurePosixPath
from typing import IO
from xml.etree.ElementTree import ParseError, XMLPullParser

from chalicelib.adapters import storage
from chalicelib.errors import InvalidQgisProjectFile, ValidationError
from chalicelib.models import Project
from chalicelib.rules import qgz_limits

MAX_NAME_CHARS = 255
FORBIDDEN_IN_SEGMENT = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
# Characters that reorder what follows them on screen (`invoice\u202efdp.exe` shows as
# `invoiceexe.pdf`): refused, as they only serve to disguise a name.
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
WINDOWS_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])$", re.IGNORECASE)
QGIS_SUFFIXES = (".qgs", ".qgz")
DEFAULT_ATTACHMENT_DIRS = ("DCIM",)
QGIS_HEAD_BYTES = 64 * 1024
# Only the head of a project file is read, never the whole of it: the `<qgis>` root must start
# within this many (decompressed) bytes. A `.qgz` that is a zip bomb is therefore never expanded,
# and one with more members than any QGIS writes is refused without opening them.
QGIS_ROOT_WITHIN_BYTES = 1024 * 1024


def normalized(name: str) -> str:
    """The one form of a name (NFC): `café` typed on macOS (NFD) and elsewhere is one file."""
    return unicodedata.normalize("NFC", name)


def max_name_bytes() -> int:
    return storage.key_bytes_left_for_names()


def validate_name(name: str) -> str:
    """The name in its normalized form, if it is a valid file name; 400 `validation_error`."""
    name = normalized(name)
    if not name or name != name.strip():
        raise ValidationError("A file name cannot be empty or start or end with whitespace.")
    if len(name) > MAX_NAME_CHARS or len(name.encode("utf-8")) > max_name_bytes():
        raise ValidationError(
            f"A file name is at most {MAX_NAME_CHARS} characters and {max_name_bytes()} bytes "
            "in UTF-8 (S3 keys are at most 1024 bytes)."
        )
    if BIDI_CONTROLS.search(name):
        raise ValidationError("A file name cannot contain characters that change the text direction.")
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
    """The tag of the document's root element, read from its first bytes only. The parser
    resolves no external entity, and expat refuses runaway entity expansion."""
    parser = XMLPullParser(events=("start",))
    read = 0
    try:
        while read < QGIS_ROOT_WITHIN_BYTES and (chunk := stream.read(QGIS_HEAD_BYTES)):
            read += len(chunk)
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
                names = archive.namelist()
                members = [m for m in names if m.lower().endswith(".qgs")]
                if len(names) > qgz_limits.MAX_MEMBERS or not members:
                    root = None
                else:
                    with archive.open(members[0]) as member:
                        root = _qgis_root_of(io.BufferedReader(member))
        else:
            root = _qgis_root_of(stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            NotImplementedError, RuntimeError):  # broken, encrypted or exotic archives
        root = None
    finally:
        stream.seek(0)
    if root != "qgis":
        raise InvalidQgisProjectFile(f"`{name}` is not a valid QGIS project file.")
