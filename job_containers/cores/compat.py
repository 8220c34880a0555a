"""The few QGIS spellings that differ between 3.22 (Debian bookworm, what CI runs) and the newer
QGIS of the job image (3.40 LTR and later). Everything else in the cores uses API both share."""

from __future__ import annotations

from typing import Any

from qgis.core import Qgis, QgsProject

# Qgis.ProjectReadFlag and its read-only / no-3D / no-styles members exist from 3.28 on.
_HAS_PROJECT_READ_FLAG = Qgis.QGIS_VERSION_INT >= 32800


def enum_value(value: Any) -> int:
    """The number behind a QGIS enum: 3.22 hands out plain ints, newer QGIS enum members."""
    return int(getattr(value, "value", value))


def inspection_read_flags() -> Any:
    """Flags to read a project only to look at it: no layouts (slow, unused), and on newer QGIS
    also read-only layers, no 3D views and no project styles."""
    if _HAS_PROJECT_READ_FLAG:
        flag = Qgis.ProjectReadFlag
        return (
            Qgis.ProjectReadFlags()
            | flag.DontLoadLayouts
            | flag.ForceReadOnlyLayers
            | flag.DontLoad3DViews
            | flag.DontLoadProjectStyles
        )
    return QgsProject.ReadFlags() | QgsProject.FlagDontLoadLayouts
