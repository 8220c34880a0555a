"""Test data for the apply_deltas core: the reference server's delta project and deltafiles, and
readers that check the edited files independently of QGIS (sqlite3 and GDAL's own OGR)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from osgeo import ogr

ogr.UseExceptions()

# layer ids of app/delta/project.qgs
POINTS_XY = "points_xy_897d5ed7_b810_4624_abe3_9f7c0a93d6a1"
POINTS_XYZ = "points_xyz_ff574332_1ff5_47e6_8d6a_15f68e0c7cd1"
POINTS_XYZM = "points_xyzm_1cb6363a_5a99_4090_aeaf_d88deec2a3d8"
POLYGONS = "polygons_f18b6046_8e46_4206_a698_641c58e5ac73"
POINTS_GEOJSON = "points_c2784cf9_c9c3_45f6_9ce5_98a6047e4d6c"
NONSPATIAL_CSV = "nonspatial_5b9be5d0_6faa_4c14_825d_7889615c842c"
SPECIAL_DATA_TYPES = "special_data_types_c89719e4_25b5_4df7_b28d_ea5d086bd292"

FEEDBACK_KEYS = {
    "delta_id", "delta_index", "method", "layer_id", "feature_pk", "modified_pk",
    "status", "msg", "e_type", "conflicts", "provider_errors",
}


def load_deltas(deltafile: Path) -> list[dict[str, Any]]:
    """The deltas as the API hands them over: it strips the literal `\\u0000` before parsing."""
    return json.loads(deltafile.read_text().replace("\\u0000", ""))["deltas"]


def delta(method: str, layer_id: str, source_pk: str = "", **content: Any) -> dict[str, Any]:
    """A delta as QField writes it; `content` holds `old`/`new` and any key to override."""
    return {
        "uuid": str(uuid.uuid4()),
        "clientId": "cd517e24-a520-4021-8850-e5af70e3a612",
        "exportId": "f70c7286-fcec-4dbe-85b5-63d4735dac47",
        "localLayerId": layer_id,
        "sourceLayerId": layer_id,
        "localPk": source_pk,
        "sourcePk": source_pk,
        "method": method,
        **content,
    }


def rows(gpkg: Path, table: str, columns: str = "fid, int, dbl, str") -> list[tuple]:
    with sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True) as db:
        return db.execute(f'SELECT {columns} FROM "{table}" ORDER BY fid').fetchall()


def wkt_by_fid(path: Path, layer_name: str | None = None) -> dict[int, str | None]:
    """ISO WKT of each feature by its FID (the `fid` field's value where the format has no FID)."""
    dataset = ogr.Open(str(path))
    layer = dataset.GetLayerByName(layer_name) if layer_name else dataset.GetLayer(0)
    use_field = not layer.GetFIDColumn() and layer.GetLayerDefn().GetFieldIndex("fid") >= 0
    result = {}
    for feature in layer:
        geometry = feature.GetGeometryRef()
        key = feature.GetField("fid") if use_field else feature.GetFID()
        result[key] = geometry.ExportToIsoWkt() if geometry else None
    return result


def properties(path: Path, layer_name: str | None = None) -> list[dict[str, Any]]:
    dataset = ogr.Open(str(path))
    layer = dataset.GetLayerByName(layer_name) if layer_name else dataset.GetLayer(0)
    return [feature.items() for feature in layer]


def statuses(feedback: list[dict[str, Any]]) -> list[str]:
    return [item["status"] for item in feedback]
