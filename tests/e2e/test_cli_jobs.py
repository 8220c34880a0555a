"""The unmodified qfieldcloud-cli against `./dev run` (API, AWS stand-in and the local job worker):
a project is processed on upload, packaged on request, and the package opens in QGIS; a
deltafile pushed with `delta-push` lands in the data once, and the next package carries it."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests import shared_data
from tests.e2e.stack import ROOT
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e
BEE_FILES = ["bees.gpkg", "bumblebees.gpkg", "simple_bee_farming.qgs"]


def ok(result):
    assert result.returncode == 0 and not result.http_error, result.output
    assert "Traceback" not in result.output, result.output
    return result


def open_in_qgis(project_file: Path) -> dict:
    completed = subprocess.run([sys.executable, str(ROOT / "tests" / "qgis_open.py"), str(project_file)],
                               capture_output=True, text=True, timeout=120, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def wait_for(cli, job_id: str) -> str:
    """The job's status once it is finished or failed."""

    def done() -> str | None:
        status = ok(cli("--json", "job-status", job_id)).json()["status"]
        return status if status in ("finished", "failed") else None

    return wait_until(done, f"job {job_id} is not done", interval=0.3)


@pytest.fixture(scope="module")
def cli(stack):
    token = stack.login("alice", "pw-alice-secret")
    return lambda *args, **kwargs: stack.cli(*args, token=token, **kwargs)


@pytest.fixture(scope="module")
def bees(cli, tmp_path_factory) -> str:
    """simple_bee_farming uploaded with `upload-files`, processed by the worker."""
    folder = tmp_path_factory.mktemp("bees")
    for name in BEE_FILES:
        shutil.copyfile(shared_data.testdata() / "worker" / name, folder / name)
    pid = ok(cli("--json", "create-project", "bees")).json()["id"]
    ok(cli("upload-files", pid, str(folder)))
    (job,) = ok(cli("--json", "list-jobs", pid)).json()
    assert job["type"] == "process_projectfile"
    assert wait_for(cli, job["id"]) == "finished"
    return pid


def test_upload_package_and_download_open_in_qgis(cli, bees, tmp_path):
    (job,) = ok(cli("--json", "list-jobs", bees, "--type", "process_projectfile")).json()
    assert job["status"] == "finished"

    triggered = ok(cli("--json", "job-trigger", bees, "package")).json()
    assert wait_for(cli, triggered["id"]) == "finished"
    latest = ok(cli("--json", "package-latest", bees)).json()
    assert latest["status"] == "finished"
    vector = {layer["name"]: layer for layer in latest["layers"].values() if layer["provider_name"] == "ogr"}
    assert vector and all(layer["is_valid"] for layer in vector.values())
    human = ok(cli("package-latest", bees)).output
    assert "Apiary" in human or "apiary" in human.lower()

    target = tmp_path / "package"
    ok(cli("package-download", bees, str(target)))
    names = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert names == ["data.gpkg", "simple_bee_farming_qfield.qgs"]
    opened = open_in_qgis(target / "simple_bee_farming_qfield.qgs")
    assert opened["opened"]
    packaged = {layer["name"]: layer for layer in opened["layers"].values() if layer["provider"] == "ogr"}
    assert packaged.keys() == vector.keys()
    source_counts = {}
    for gpkg, table in (("bees.gpkg", "apiary"), ("bumblebees.gpkg", "area")):
        with sqlite3.connect(shared_data.testdata() / "worker" / gpkg) as db:
            source_counts[table] = db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    assert sorted(layer["features"] for layer in packaged.values()) == sorted(source_counts.values())
    for layer in packaged.values():
        assert layer["valid"] and "data.gpkg" in layer["source"]
        assert layer["properties"].get("QFieldSync/sourceDataPrimaryKeys") == "fid"
        assert layer["properties"].get("QFieldSync/remoteLayerId")


def test_a_pushed_deltafile_lands_once_and_the_next_package_carries_it(cli, bees, tmp_path):
    """Build a deltafile from the package as QField does, push it twice with `delta-push`."""
    triggered = ok(cli("--json", "job-trigger", bees, "package")).json()
    assert wait_for(cli, triggered["id"]) == "finished"
    latest = ok(cli("--json", "package-latest", bees)).json()
    apiary = next(lid for lid, layer in latest["layers"].items() if layer["name"] == "Apiary")
    package = tmp_path / "package"
    ok(cli("package-download", bees, str(package)))
    with sqlite3.connect(package / "data.gpkg") as db:
        table = next(name for (name,) in db.execute("SELECT table_name FROM gpkg_contents")
                     if db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] > 0
                     and "nbr_of_boxes" in [c[1] for c in db.execute(f'PRAGMA table_info("{name}")')])
        fid, boxes = db.execute(f'SELECT fid, nbr_of_boxes FROM "{table}" ORDER BY fid LIMIT 1').fetchone()
    new_boxes = boxes % 10 + 1  # the form allows 1..10
    deltafile = {
        "version": "1.0", "id": str(uuid.uuid4()), "project": bees, "files": [],
        "deltas": [{
            "uuid": str(uuid.uuid4()), "clientId": str(uuid.uuid4()), "exportId": latest["package_id"],
            "localLayerId": apiary, "sourceLayerId": apiary, "localLayerName": "Apiary",
            "localLayerCrs": "EPSG:3857", "localPk": str(fid), "sourcePk": str(fid), "method": "patch",
            "old": {"attributes": {"nbr_of_boxes": boxes}, "is_snapshot": True},
            "new": {"attributes": {"nbr_of_boxes": new_boxes}, "is_snapshot": False},
        }],
    }
    path = tmp_path / "deltafile.json"
    path.write_text(json.dumps(deltafile))
    ok(cli("delta-push", bees, str(path)))
    apply = [j for j in ok(cli("--json", "list-jobs", bees, "--type", "delta_apply")).json()]
    assert len(apply) == 1 and wait_for(cli, apply[0]["id"]) == "finished"

    ok(cli("delta-push", bees, str(path)))  # again: nothing new, no new job (a push makes its job at once)
    assert len(ok(cli("--json", "list-jobs", bees, "--type", "delta_apply")).json()) == 1

    data = tmp_path / "data"
    ok(cli("download-files", bees, str(data)))
    with sqlite3.connect(data / "bees.gpkg") as db:
        assert db.execute("SELECT nbr_of_boxes FROM apiary WHERE fid = ?", (fid,)).fetchone() == (new_boxes,)

    repackaged = ok(cli("--json", "job-trigger", bees, "package")).json()
    assert repackaged["id"] != triggered["id"] and wait_for(cli, repackaged["id"]) == "finished"
    fresh = tmp_path / "fresh"
    ok(cli("package-download", bees, str(fresh)))
    with sqlite3.connect(fresh / "data.gpkg") as db:
        packaged = db.execute(f'SELECT nbr_of_boxes FROM "{table}" WHERE fid = ?', (fid,)).fetchone()
    assert packaged == (new_boxes,)
