"""The files a package holds beside its project and data.gpkg, copied from the project directory.

Files keep their place relative to the project, so relative paths in the project stay right. A
path that leads outside the project directory is never followed: a project file must not make
the worker package files that are not the project's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from qgis.core import QgsFileUtils


def copy_layer_files(path: str, project_dir: Path, out_dir: Path) -> None:
    """Copy a layer's file with its sidecars (.shx, .dbf, .prj, .aux.xml...)."""
    for file in sorted({path, *QgsFileUtils.sidecarFilesForPath(path)}):
        copy_file(Path(file), project_dir, out_dir)


def copy_companions(project_path: Path, out_dir: Path, packaged_stem: str, image_decoration: str) -> None:
    """The files that go with the project itself: its QML plugin (`<stem>.qml`), translations
    (`<stem>_de.qm`, ...) and auxiliary storage (`<stem>.qgd`), renamed after the packaged
    project, and the image shown on its map canvas."""
    stem = project_path.stem
    for suffix in (".qml", ".qgd"):
        source = project_path.with_suffix(suffix)
        if source.is_file():
            shutil.copyfile(source, out_dir / f"{packaged_stem}{suffix}")
    for translation in sorted(project_path.parent.glob(f"{stem}_*.qm")):
        shutil.copyfile(translation, out_dir / f"{packaged_stem}{translation.name[len(stem):]}")
    if image_decoration:
        image = project_path.parent / image_decoration
        if image.is_file():
            copy_file(image, project_path.parent, out_dir)


def copy_data_dirs(project_dir: Path, out_dir: Path, data_dirs: list[str],
                   attachment_dirs: list[str]) -> None:
    """Copy the project's data directories; attachments are never part of a package (QField gets
    them from the project files)."""
    excluded = [project_dir / name for name in attachment_dirs]
    for name in data_dirs:
        directory = project_dir / name
        if not directory.is_dir() or _inside(directory, project_dir) is None:
            continue
        for file in sorted(directory.rglob("*")):
            if file.is_file() and not any(file.is_relative_to(dir_) for dir_ in excluded):
                copy_file(file, project_dir, out_dir)


def copy_file(file: Path, project_dir: Path, out_dir: Path) -> None:
    relative = _inside(file, project_dir)
    if relative is None or not file.is_file():
        return
    target = out_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(file, target)


def _inside(path: Path, directory: Path) -> Path | None:
    """`path` relative to `directory` if it lies inside it (links resolved), else None."""
    resolved, root = path.resolve(), directory.resolve()
    return resolved.relative_to(root) if resolved.is_relative_to(root) and resolved != root else None
