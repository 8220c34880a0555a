"""Job cores run real PyQGIS (Debian's python3-qgis): one QgsApplication for the session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import shared_data


@pytest.fixture(scope="session")
def qgis() -> str:
    from job_containers import qgis_app

    return qgis_app.start()


@pytest.fixture
def testdata() -> Path:
    return shared_data.testdata()


def copy_tree(source: Path, target: Path) -> Path:
    """A writable copy of read-only test data."""
    shutil.copytree(source, target, copy_function=shutil.copyfile)
    return target
