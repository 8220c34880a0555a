"""The feature a delta is about: its primary key, finding it, comparing it with the delta's `old`
values (conflicts), and turning the delta's JSON values into values the layer's fields hold.

JSON carries dates as ISO strings, binary as text and numbers the client may have read as strings,
so values are compared after converting the delta's value to the field's type (QGIS's own
`QgsField.convertCompatible`), not as raw Python values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from qgis.core import (
    QgsExpression,
    QgsFeature,
    QgsFeatureRequest,
    QgsField,
    QgsFieldConstraints,
    QgsGeometry,
    QgsVectorLayer,
    QgsVectorLayerUtils,
)
from qgis.PyQt.QtCore import QByteArray, QDate, QDateTime, Qt, QTime, QVariant

from job_containers.cores.delta_format import DeltaError
from job_containers.cores.geometry import is_missing, parse_wkt, same_geometry

# Conflict messages end up in the API's delta records: a huge geometry or text is cut short.
MAX_SHOWN_CHARS = 1000


@dataclass(frozen=True)
class PrimaryKey:
    index: int
    field: QgsField
    # OGR layers (GeoPackage) whose PK is the provider's FID: the feature id is the PK value, and a
    # lookup by feature id costs one indexed read, however many edits the layer holds.
    is_feature_id: bool

    @property
    def name(self) -> str:
        return self.field.name()


def primary_key(layer: QgsVectorLayer) -> PrimaryKey:
    """The single-column provider primary key, else a field named `fid` (any case): the rule
    QFieldSync packages with, so `sourcePk` holds this field's value."""
    fields = layer.fields()
    indexes = layer.primaryKeyAttributes()
    if len(indexes) > 1:
        raise DeltaError(f'Layer "{layer.name()}" has a composite primary key, which is not supported')
    if indexes:
        return PrimaryKey(indexes[0], fields.at(indexes[0]), is_feature_id=layer.providerType() == "ogr")
    for index, field in enumerate(fields):
        if field.name().lower() == "fid":
            return PrimaryKey(index, field, is_feature_id=False)
    raise DeltaError(f'Layer "{layer.name()}" has neither a primary key nor a "fid" field')


def find_feature(layer: QgsVectorLayer, pk: PrimaryKey, value: str) -> QgsFeature:
    """The one feature whose PK is `value`, including edits not yet committed."""
    not_found = f'Unable to find feature with "{pk.name}" = {value!r}'
    if value == "":
        raise DeltaError(not_found)
    try:
        typed = pk.field.convertCompatible(value)
    except ValueError:
        raise DeltaError(not_found) from None
    if isinstance(typed, int) and str(typed) != value:  # "1.5" converts to 2: another feature
        raise DeltaError(not_found)
    if pk.is_feature_id:
        feature = next(layer.getFeatures(QgsFeatureRequest(int(typed))), None)
        if feature is not None and feature.attribute(pk.index) == typed:
            return feature
    # Not under its feature id: a feature created in this job with an explicit PK, or a layer
    # whose PK is an ordinary field. A limit of 2 is enough to tell one match from several.
    expression = QgsExpression.createFieldEqualityExpression(pk.name, typed)
    matches = list(layer.getFeatures(QgsFeatureRequest().setFilterExpression(expression).setLimit(2)))
    if not matches:
        raise DeltaError(not_found)
    if len(matches) > 1:
        raise DeltaError(f'More than one feature has "{pk.name}" = {value!r}')
    return matches[0]


def field_value(field: QgsField, value: Any) -> Any:
    """The delta's JSON value as the field's type, or DeltaError if the field cannot hold it."""
    try:
        return field.convertCompatible(value)
    except ValueError as error:
        raise DeltaError(f'Invalid value for attribute "{field.name()}": {error}') from None


def conflicts(layer: QgsVectorLayer, feature: QgsFeature, old: dict[str, Any]) -> list[str]:
    """How the feature differs from the delta's `old` values. Attributes the layer does not have
    are not compared (a package can carry extra fields); the geometry is, where `old` has one."""
    found = []
    fields = feature.fields()
    for name, old_value in (old.get("attributes") or {}).items():
        index = fields.indexOf(name)
        if index < 0:
            continue
        current = feature.attribute(index)
        if not same_value(fields.at(index), current, old_value):
            found.append(
                f'The attribute "{name}" that has a conflict:\n-{shown(current)}\n+{shown(old_value)}'
            )
    if layer.isSpatial() and "geometry" in old and not _same_as_wkt(feature.geometry(), old["geometry"]):
        current = feature.geometry()
        found.append(
            "The geometry has a conflict:\n"
            f"-{'NULL' if is_missing(current) else shown(current.asWkt())}\n+{shown(old['geometry'] or None)}"
        )
    return found


def _same_as_wkt(geometry: QgsGeometry, wkt: str | None) -> bool:
    try:
        return same_geometry(geometry, parse_wkt(wkt) if wkt else QgsGeometry())
    except DeltaError:
        return False


def same_value(field: QgsField, current: Any, incoming: Any) -> bool:
    if is_null(current) or incoming is None:
        return is_null(current) and incoming is None
    try:
        incoming = field.convertCompatible(incoming)
    except ValueError:
        return False
    if isinstance(current, QDateTime) and isinstance(incoming, QDateTime):
        return _same_datetime(current, incoming)
    if isinstance(current, float) and isinstance(incoming, int | float):
        return math.isclose(current, incoming, rel_tol=1e-9)
    return current == incoming


def _same_datetime(a: QDateTime, b: QDateTime) -> bool:
    """A date-time without a zone (most GeoPackages, most clients) is compared as wall-clock time:
    the server's zone says nothing about the data's."""
    if Qt.LocalTime in (a.timeSpec(), b.timeSpec()):
        return a.date() == b.date() and a.time() == b.time()
    return a == b


def is_null(value: Any) -> bool:
    return value is None or (isinstance(value, QVariant) and value.isNull())


def shown(value: Any) -> str:
    if is_null(value):
        text = "NULL"
    elif isinstance(value, QDate | QDateTime | QTime):
        text = value.toString(Qt.ISODateWithMs)
    elif isinstance(value, QByteArray):
        text = bytes(value).decode("utf-8", "replace")
    else:
        text = str(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "…"


def constraint_errors(layer: QgsVectorLayer, feature: QgsFeature, indexes: list[int]) -> list[str]:
    """Which of the data source's own constraints (NOT NULL, UNIQUE) the feature breaks, so that a
    delta the provider would refuse at commit fails alone, now. Constraints defined in the project
    (expressions) are QField's to enforce: the server may lack the device's context to evaluate them."""
    errors = []
    for index in indexes:
        valid, messages = QgsVectorLayerUtils.validateAttribute(
            layer,
            feature,
            index,
            QgsFieldConstraints.ConstraintStrengthNotSet,
            QgsFieldConstraints.ConstraintOriginProvider,
        )
        if not valid:
            errors += [f'"{layer.fields().at(index).name()}": {message}' for message in messages]
    return errors
