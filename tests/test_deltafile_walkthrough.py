"""docs/jobs.md's first deltafile, as a reader follows it: the beekeeping project uploaded, the
layer id, fields and primary key found where the walk-through says, exactly the documented JSON
pushed (with the project's id put in), and the edits checked in the new GeoPackage with sqlite3."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from tests import shared_data
from tests.jobs.delta_data import wkt_by_fid
from tests.jobs_helpers import fetch, run_jobs, upload_tree

ROOT = Path(__file__).resolve().parents[1]


def documented_deltafile() -> str:
    section = (ROOT / "docs" / "jobs.md").read_text().split("## A first deltafile", 1)[1]
    return re.search(r"```json\n(.*?)```", section, re.DOTALL).group(1)


def test_the_documented_deltafile_is_applied(alice, tmp_path):
    project = alice.create_project("bee_farming")["id"]
    upload_tree(alice, project, shared_data.testdata() / "app" / "simple_bee_farming" / "real_files")
    run_jobs()

    deltafile = json.loads(documented_deltafile().replace("<project id>", project))
    patch, create = deltafile["deltas"]
    # Each id and name is where the walk-through says: the process_projectfile job's report.
    (job,) = alice.get("jobs/", params={"project_id": project, "type": "process_projectfile"}).json()
    report = alice.get(f"jobs/{job['id']}/").json()["feedback"]
    layer = report["outputs"]["project_details"]["project_details"]["layers_by_id"][patch["sourceLayerId"]]
    assert (layer["name"], layer["crs"], layer["qfc_source_data_pk_name"]) == ("Apiary", "EPSG:3857", "fid")
    fields = {field["name"] for field in layer["fields"]}
    assert {*patch["new"]["attributes"], *create["new"]["attributes"]} <= fields

    body = json.dumps(deltafile).encode()  # as `qfieldcloud-cli delta-push` sends it
    pushed = alice.post(f"deltas/{project}/", files=[("file", ("deltafile.json", body, "application/json"))])
    assert pushed.status == 200
    run_jobs()
    statuses = alice.get(f"deltas/{project}/{deltafile['id']}/").json()
    assert [item["status"] for item in statuses] == ["STATUS_APPLIED", "STATUS_APPLIED"], statuses

    gpkg = tmp_path / "bees.gpkg"
    gpkg.write_bytes(fetch(alice, f"files/{project}/bees.gpkg/"))
    with sqlite3.connect(gpkg) as db:
        assert db.execute("SELECT nbr_of_boxes, beekeeper FROM apiary WHERE fid = 4").fetchone() == \
            (6, "Stephen Hawking")
        ((fid, boxes, species),) = db.execute(
            "SELECT fid, nbr_of_boxes, bee_species FROM apiary WHERE beekeeper = 'Ada Lovelace'").fetchall()
    assert (boxes, species) == (2, "Apis Mellifera") and fid > 13
    assert wkt_by_fid(gpkg, "apiary")[fid] == create["new"]["geometry"]
