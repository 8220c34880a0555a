"""Job cores run real PyQGIS (Debian's python3-qgis): one QgsApplication for the session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import shared_data


@pytest.fixture(scope="session")
def qgis() -> str:
    from job_containers.cores import qgis_app

    return qgis_app.start()


@pytest.fixture
def testdata() -> Path:
    return shared_data.testdata()


def copy_tree(source: Path, target: Path) -> Path:
    """A writable copy of read-only test data."""
    shutil.copytree(source, target, copy_function=shutil.copyfile)
    return target


@pytest.fixture
def bee_project(testdata: Path, tmp_path: Path) -> Path:
    """simple_bee_farming.qgs (2 GeoPackage layers, forms, 3 map themes), writable."""
    project = tmp_path / "bee"
    project.mkdir()
    for name in ("simple_bee_farming.qgs", "bees.gpkg", "bumblebees.gpkg"):
        shutil.copyfile(testdata / "worker" / name, project / name)
    return project


@pytest.fixture
def simple_project(testdata: Path, tmp_path: Path) -> Path:
    """A GeoPackage, a shapefile without primary key, two spatialite layers whose db is missing."""
    return copy_tree(testdata / "worker" / "simple_project", tmp_path / "simple_project")


@pytest.fixture
def delta_project(testdata: Path, tmp_path: Path) -> Path:
    """project.qgs over testdata.gpkg (5 tables), two GeoJSONs and a CSV; also broken.qgs and
    project_broken_datasource.qgs (an unreachable PostGIS layer)."""
    return copy_tree(testdata / "app" / "delta", tmp_path / "delta")
