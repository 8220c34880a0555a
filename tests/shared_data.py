"""Where the shared test data lives: `QFC_SHARED_DIR`, or the nearest `shared/` folder beside the
checkout or one of its parents (so a checkout anywhere under the workspace finds it). Looked up
on first use, never at import, so that collection works from any location."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@cache
def shared_dir() -> Path:
    configured = os.environ.get("QFC_SHARED_DIR")
    candidates = [Path(configured)] if configured else [p / "shared" for p in ROOT.parents]
    for candidate in candidates:
        if (candidate / "testdata").is_dir():
            return candidate
    raise RuntimeError(f"the shared test data was not found (looked in {candidates}); set QFC_SHARED_DIR")


def testdata() -> Path:
    """The QFieldCloud test data: projects, GeoPackages, deltafiles."""
    return shared_dir() / "testdata" / "qfieldcloud"


def tools() -> Path:
    return shared_dir() / "tools"
