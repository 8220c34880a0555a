"""Readers independent of the job cores, to check what they report or wrote: sqlite3 for
GeoPackages, GDAL/OGR for other vector files, ElementTree for project XML, Pillow for images."""

from __future__ import annotations

import hashlib
import sqlite3
import xml.etree.ElementTree as ET
from contextlib import closing
from pathlib import Path

from osgeo import ogr
from PIL import Image


def gpkg_tables(path: Path) -> set[str]:
    with closing(_read_only(path)) as db:
        return {row[0] for row in db.execute("SELECT table_name FROM gpkg_contents")}


def gpkg_count(path: Path, table: str) -> int:
    with closing(_read_only(path)) as db:
        return db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]


def gpkg_column_values(path: Path, table: str, column: str) -> list:
    with closing(_read_only(path)) as db:
        return [row[0] for row in db.execute(f'SELECT "{column}" FROM "{table}" ORDER BY "{column}"')]


def gpkg_fid_column(path: Path, table: str) -> str:
    """The INTEGER PRIMARY KEY column of a GeoPackage table (its feature id)."""
    with closing(_read_only(path)) as db:
        columns = db.execute(f'PRAGMA table_info("{table}")').fetchall()
    return next(name for _cid, name, _type, _notnull, _default, pk in columns if pk)


def ogr_count(path: Path) -> int:
    dataset = ogr.Open(str(path))
    return dataset.GetLayer(0).GetFeatureCount()


def ogr_values(path: Path, field: str) -> list:
    dataset = ogr.Open(str(path))
    return sorted(feature.GetField(field) for feature in dataset.GetLayer(0))


def layer_tree_ids(project: Path) -> list[str]:
    """Layer ids in the order of the project's legend (`layer-tree-layer` elements)."""
    root = ET.parse(project).getroot()
    return [node.get("id") for node in root.find("layer-tree-group").iter("layer-tree-layer")]


def project_root(project: Path) -> ET.Element:
    return ET.parse(project).getroot()


def image_colours(path: Path) -> tuple[tuple[int, int], int]:
    """Size of an image and how many distinct colours it has (1 = blank)."""
    with Image.open(path) as image:
        return image.size, len(image.convert("RGBA").getcolors(maxcolors=1 << 16) or ())


def md5sums(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*")) if path.is_file()
    }


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
