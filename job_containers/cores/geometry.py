"""Delta geometries: WKT in, geometries that fit a layer out, and comparing geometries as shapes.

QField sends geometries as WKT in the layer's CRS. Comparing them as text would report a conflict
for `POLYGON ((2 2, 5 2 ...` against `Polygon ((2 2,5 2 ...`, or for a layer that stores a Z the
client never had; so geometries are compared as shapes.
"""

from __future__ import annotations

import math
import re

from qgis.core import QgsFeature, QgsGeometry, QgsVectorLayer, QgsVectorLayerUtils, QgsWkbTypes

from job_containers.cores.delta_format import DeltaError

# Two shapes closer than this (in layer units) are the same: only WKT formatting noise is that small.
TOLERANCE = 1e-9

_NAN = re.compile(r"\bnan\b", re.IGNORECASE)


def parse_wkt(wkt: str) -> QgsGeometry:
    """QField writes `nan` for an unknown Z or M (a GPS fix without altitude), which QGIS 3.22 cannot
    parse, and QGIS fills the ordinates missing from `POINTZ (1 2)` with NaN. Both become 0, as
    QFieldCloud's worker does, so that every stored ordinate is a number other tools can read."""
    geometry = QgsGeometry.fromWkt(_NAN.sub("0", wkt))
    if geometry.isNull():
        raise DeltaError(f"Invalid WKT geometry: {wkt[:200]!r}")
    wkb_type = geometry.wkbType()
    if QgsWkbTypes.hasZ(wkb_type) or QgsWkbTypes.hasM(wkb_type):
        parsed = geometry.asWkt()
        if _NAN.search(parsed):
            geometry = QgsGeometry.fromWkt(_NAN.sub("0", parsed))
    return geometry


def fit_to_layer(geometry: QgsGeometry, layer: QgsVectorLayer) -> QgsGeometry:
    """The geometry as the layer stores it: Z/M added (as 0) or dropped, single part made multi (or
    the reverse) to match the layer's type. A point for a polygon layer is refused, not stored."""
    layer_type = layer.geometryType()
    if layer_type != QgsWkbTypes.UnknownGeometry and geometry.type() != layer_type:
        raise DeltaError(
            f"A {QgsWkbTypes.displayString(geometry.wkbType())} geometry does not fit layer "
            f'"{layer.name()}" of type {QgsWkbTypes.displayString(layer.wkbType())}'
        )
    feature = QgsFeature(layer.fields())
    feature.setGeometry(geometry)
    fitted = QgsVectorLayerUtils.makeFeatureCompatible(feature, layer)
    if len(fitted) != 1:
        parts = geometry.constGet().partCount()
        raise DeltaError(f'A {parts}-part geometry does not fit layer "{layer.name()}"')
    return fitted[0].geometry()


def is_missing(geometry: QgsGeometry) -> bool:
    return geometry.isNull() or geometry.isEmpty()


def same_geometry(a: QgsGeometry, b: QgsGeometry) -> bool:
    """Same shape, whatever the WKT formatting, vertex order or start point. Z and M are compared
    only where both geometries carry them: a layer may add or drop them."""
    if is_missing(a) or is_missing(b):
        return is_missing(a) and is_missing(b)
    if a.type() != b.type() or a.hausdorffDistance(b) > TOLERANCE:
        return False
    return _same_ordinates(a, b, QgsWkbTypes.hasZ, "z") and _same_ordinates(a, b, QgsWkbTypes.hasM, "m")


def _same_ordinates(a: QgsGeometry, b: QgsGeometry, has_ordinate, name: str) -> bool:
    if not (has_ordinate(a.wkbType()) and has_ordinate(b.wkbType())):
        return True
    values_a = [getattr(vertex, name)() for vertex in a.vertices()]
    values_b = [getattr(vertex, name)() for vertex in b.vertices()]
    return len(values_a) == len(values_b) and all(map(_same_number, values_a, values_b))


def _same_number(x: float, y: float) -> bool:
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=0, abs_tol=TOLERANCE)
