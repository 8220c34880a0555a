"""Deltas through the API and the real worker: QField's deltafiles pushed as QField pushes them,
applied with QGIS to the project's files, each delta's status as QField reads it, and the data
checked in the new file versions with sqlite3 and OGR (not with the code that applied them)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests import shared_data
from tests.jobs.delta_data import POINTS_GEOJSON, properties, rows, wkt_by_fid
from tests.jobs_helpers import an_hour_later, fetch, run_jobs, upload_tree

DELTA_FILES = ["testdata.gpkg", "points.geojson", "polygons.geojson", "nonspatial.csv", "project.qgs"]
ORIGINAL_POINTS = [(1, 1, 0.1, "str1"), (2, 2, 0.2, "str2"), (3, 3, 0.3, "str3")]
STATUSES = {"STATUS_PENDING", "STATUS_BUSY", "STATUS_APPLIED", "STATUS_CONFLICT", "STATUS_NOT_APPLIED",
            "STATUS_ERROR", "STATUS_IGNORED", "STATUS_UNPERMITTED"}


def deltafile(name: str, project_id: str) -> dict:
    """A test deltafile for the project, under a new id as each push of QField has (the test
    files share ids)."""
    text = (shared_data.testdata() / "app" / "delta" / "deltas" / name).read_text()
    data = json.loads(text)
    data.update(project=project_id, id=str(uuid.uuid4()))
    return data


def push(client, project_id: str, data: dict | bytes, *, qfield: bool = True):
    """POST a deltafile as QField does (a `text` part, then `file` named by a device path)."""
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    parts = [("file", ("/storage/emulated/0/QField/deltafile.json", body, "application/json"))]
    if qfield:
        parts.insert(0, ("text", ("", b"{}", "application/json")))
    return client.post(f"deltas/{project_id}/", files=parts)


def statuses(client, project_id: str, deltafile_id: str) -> list[str]:
    items = client.get(f"deltas/{project_id}/{deltafile_id}/").json()
    assert all(item["status"] in STATUSES and item["id"] and item["created_at"] for item in items)
    return [item["status"] for item in items]


@pytest.fixture
def project(alice, override_settings) -> str:
    """alice's copy of the reference delta project, processed, with conflicts not overwritten
    unless a test says so."""
    pid = alice.create_project("deltas", overwrite_conflicts=False)["id"]
    upload_tree(alice, pid, shared_data.testdata() / "app" / "delta", DELTA_FILES)
    run_jobs()
    return pid


def data(client, project_id: str, tmp_path: Path, name: str = "testdata.gpkg") -> Path:
    """The latest version of a project file, downloaded."""
    path = tmp_path / f"{uuid.uuid4()}-{name}"
    path.write_bytes(fetch(client, f"files/{project_id}/{name}/"))
    return path


def pushed(client, project_id: str, name: str) -> list[str]:
    """Push a test deltafile, let the worker apply it; the statuses of its deltas."""
    body = deltafile(name, project_id)
    assert push(client, project_id, body).status == 200
    run_jobs()
    return statuses(client, project_id, body["id"])


def test_a_single_patch_is_applied_and_listed_as_qfield_reads_it(alice, project, tmp_path):
    assert pushed(alice, project, "singlelayer_singledelta.json") == ["STATUS_APPLIED"]
    assert rows(data(alice, project, tmp_path), "points_xy") == [(1, 666, 0.1, "str1"), *ORIGINAL_POINTS[1:]]
    (item,) = alice.get(f"deltas/{project}/").json()
    assert item["created_by"] == "alice" and item["deltafile_id"]
    assert item["content"]["new"] == {"attributes": {"int": 666}}
    # `output` is the last report as JSON text (QFieldCloud prints it as a Python value).
    assert isinstance(item["output"], str) and json.loads(item["output"]) == item["last_feedback"]
    assert item["last_feedback"]["status"] == "status_applied"
    listed = alice.get(f"projects/{project}/").json()
    assert listed["needs_repackaging"] is True and listed["status"] == "ok"


def test_a_retried_upload_stores_and_applies_nothing_twice(alice, project, tmp_path):
    body = deltafile("singlelayer_singledelta.json", project)
    assert push(alice, project, body).status == 200
    run_jobs()
    versions = len(alice.get(f"files/{project}/").json()[-1]["versions"])
    assert push(alice, project, body).status == 200  # QField retries with the same id
    body["id"] = str(uuid.uuid4())  # or the same deltas in a new file
    assert push(alice, project, body).status == 200
    assert run_jobs() == 0  # nothing new: no job
    assert len(alice.get(f"deltas/{project}/").json()) == 1
    assert len(alice.get(f"files/{project}/").json()[-1]["versions"]) == versions
    assert rows(data(alice, project, tmp_path), "points_xy")[0] == (1, 666, 0.1, "str1")


def test_multiple_deltas(alice, project, tmp_path):
    assert pushed(alice, project, "singlelayer_multidelta.json") == ["STATUS_APPLIED"] * 3
    gpkg = data(alice, project, tmp_path)
    patched = [(1, 1, 0.1, "str1"), (2, 666, 0.666, "str666"), (3, 666, 0.666, "str666")]
    assert rows(gpkg, "points_xy") == patched
    # Pushed again on top of its own result, each patch now conflicts with what is stored.
    again = deltafile("singlelayer_multidelta.json", project)
    for delta in again["deltas"]:
        delta["uuid"] = str(uuid.uuid4())
    assert push(alice, project, again).status == 200
    run_jobs()
    assert statuses(alice, project, again["id"]) == ["STATUS_CONFLICT"] * 3
    assert rows(data(alice, project, tmp_path), "points_xy") == rows(gpkg, "points_xy")


def test_multiple_layers(alice, project, tmp_path):
    assert pushed(alice, project, "multilayer_multidelta.json") == ["STATUS_APPLIED"] * 2
    gpkg = data(alice, project, tmp_path)
    assert rows(gpkg, "points_xy")[1] == (2, 666, 0.666, "str666")
    assert rows(gpkg, "polygons")[0] == (1, 777, 0.777, "str777")
    assert wkt_by_fid(gpkg, "polygons")[1] == "POLYGON ((666 666,5 2,5 5,2 5,666 666))"


def test_non_spatial_csv_layer(alice, project, tmp_path):
    expected = ["STATUS_CONFLICT", "STATUS_APPLIED", "STATUS_CONFLICT"]
    assert pushed(alice, project, "nonspatial.json") == expected
    csv = data(alice, project, tmp_path, "nonspatial.csv")
    assert csv.read_bytes() == b'fid,col1\n"1",foo\n"2",newfeature\n'


def test_special_data_types(alice, project, tmp_path):
    assert pushed(alice, project, "special_data_types.json") == ["STATUS_APPLIED"] * 2
    columns = "fid, col_date, col_datetime, col_binary"
    assert rows(data(alice, project, tmp_path), "special_data_types", columns) == [
        (1, "2024-03-23", "2024-03-23T01:23:45.000", b"bar"),
        (2, "2025-04-24", "2024-03-23T12:34:56.000", b"2025-04-24"),
    ]


XYZ, XYZM = "POINT Z ({} 0 0)", "POINT ZM ({} 0 0 0)"


@pytest.mark.parametrize(("name", "table", "point"), [
    ("singlelayer_multidelta_delta_with_xy_for_xyz_layer.json", "points_xyz", XYZ),
    ("singlelayer_multidelta_delta_with_xyz_nan_for_xyz_layer.json", "points_xyz", XYZ),
    ("singlelayer_multidelta_delta_with_xy_for_xyzm_layer.json", "points_xyzm", XYZM),
    ("singlelayer_multidelta_delta_with_xyzm_for_xyzm_layer.json", "points_xyzm", XYZM),
    ("singlelayer_multidelta_delta_with_xyzm_nannan_for_xyzm_layer.json", "points_xyzm", XYZM),
])
def test_z_m_and_nan_variants(alice, project, tmp_path, name, table, point):
    assert pushed(alice, project, name) == ["STATUS_APPLIED"] * 2
    geometries = wkt_by_fid(data(alice, project, tmp_path), table)
    assert (geometries[1], geometries[4]) == (point.format(666), point.format(777))


def test_an_unknown_layer_fails_alone(alice, project, tmp_path):
    assert pushed(alice, project, "with_errors.json") == ["STATUS_NOT_APPLIED"]
    (item,) = alice.get(f"deltas/{project}/").json()
    assert "pluto" in item["last_feedback"]["msg"]


def test_an_unknown_layer_is_an_error_at_once_once_the_project_was_packaged(alice, project):
    alice.post("jobs/", json={"project_id": project, "type": "package"})
    run_jobs()
    body = deltafile("with_errors.json", project)
    assert push(alice, project, body).status == 200
    assert statuses(alice, project, body["id"]) == ["STATUS_ERROR"]  # before any job
    assert run_jobs() == 0


def test_conflicts_without_and_with_overwrite(alice, project, tmp_path):
    assert pushed(alice, project, "singlelayer_singledelta_conflict2.json") == ["STATUS_CONFLICT"]
    assert rows(data(alice, project, tmp_path), "points_xy") == ORIGINAL_POINTS
    alice.patch(f"projects/{project}/", json={"overwrite_conflicts": True})
    assert pushed(alice, project, "singlelayer_singledelta_conflict.json") == ["STATUS_APPLIED"]
    assert rows(data(alice, project, tmp_path), "points_xy")[0] == (1, 666, 0.1, "str1")


def test_two_clients_in_six_steps(alice, project, tmp_path):
    expected = [
        ("multistage_p1_c1_create.json", [1, 2, 3, 1000]),
        ("multistage_p2_c2_create.json", [1, 2, 3, 1000, 2000]),
        ("multistage_p3_c1_patch.json", [1, 2, 3, 1000, 2000]),
        ("multistage_p4_c2_patch.json", [1, 2, 3, 1000, 2000]),
        ("multistage_p5_c1_delete.json", [1, 2, 3, 2000]),
        ("multistage_p6_c2_delete.json", [1, 2, 3]),
    ]
    ints = {}
    for name, fids in expected:
        assert pushed(alice, project, name) == ["STATUS_APPLIED"], name
        stored = rows(data(alice, project, tmp_path), "points_xy", "fid, int")
        assert [fid for fid, _ in stored] == fids, name
        ints.update(stored)
    assert (ints[1000], ints[2000]) == (1001, 2002)  # each client's patch reached its own feature


def test_an_invalid_deltafile_is_refused_and_stores_nothing(alice, project):
    reply = push(alice, project, deltafile("not_schema_valid.json", project))
    assert (reply.status, reply.code) == (400, "invalid_deltafile")
    assert "`deltas` is required" in reply.json()["message"]
    other = deltafile("singlelayer_singledelta.json", str(uuid.uuid4()))
    reply = push(alice, project, other)
    assert (reply.status, reply.code) == (400, "invalid_deltafile")
    assert "doesn't match" in reply.json()["message"]
    no_client = deltafile("singlelayer_singledelta.json", project)
    del no_client["deltas"][0]["clientId"]
    assert push(alice, project, no_client).code == "invalid_deltafile"
    assert push(alice, project, b"{not json").code == "invalid_deltafile"
    assert alice.post(f"deltas/{project}/", files={"text": b"{}"}).code == "empty_content"
    assert alice.get(f"deltas/{project}/").json() == [] and run_jobs() == 0


def test_no_qgis_project_and_permissions(users, alice, project):
    empty = alice.create_project("empty")["id"]
    assert push(alice, empty, deltafile("singlelayer_singledelta.json", empty)).code == "no_qgis_project"
    reader, reporter = users("reader"), users("reporter")
    for name in ("reader", "reporter"):
        alice.post(f"collaborators/{project}/", json={"collaborator": name, "role": name})
    assert push(reader, project, deltafile("singlelayer_singledelta.json", project)).status == 403
    assert reader.get(f"deltas/{project}/").status == 403
    body = deltafile("singlelayer_multidelta_patch_create.json", project)
    assert push(reporter, project, body).status == 200
    run_jobs()
    assert statuses(alice, project, body["id"]) == ["STATUS_UNPERMITTED", "STATUS_APPLIED"]


def test_apply_endpoints_and_listing_order(alice, project):
    first = deltafile("singlelayer_singledelta.json", project)
    second = deltafile("singlelayer_multidelta.json", project)
    second["deltas"] = second["deltas"][1:]
    assert push(alice, project, first).status == 200
    assert push(alice, project, second).status == 200
    assert alice.post(f"deltas/apply/{project}/").status == 200
    job = alice.post("jobs/", json={"project_id": project, "type": "delta_apply"})
    assert job.status == 200  # the job the pushes started, still waiting
    run_jobs()
    listed = alice.get(f"deltas/{project}/").json()
    assert [d["deltafile_id"] for d in listed] == [first["id"], second["id"], second["id"]]
    assert {d["status"] for d in listed} == {"STATUS_APPLIED"}
    newest = alice.get(f"deltas/{project}/?ordering=-created_at").json()
    assert [d["id"] for d in newest] == [d["id"] for d in reversed(listed)]
    page = alice.get(f"deltas/{project}/?limit=2")
    assert len(page.json()) == 2 and page.headers["X-Total-Count"] == "3"
    applying = [j for j in alice.get(f"jobs/?project_id={project}").json() if j["type"] == "delta_apply"]
    assert [(j["id"], j["status"]) for j in applying] == [(job.json()["id"], "finished")]


def test_a_worker_killed_mid_apply_leaves_the_deltas_pending_and_a_new_job_applies_them(
        alice, project, tmp_path):
    from chalicelib.adapters import job_queue as queue
    from chalicelib.models import Job
    from chalicelib.services import jobs
    from job_containers.kinds import delta_apply as deltas
    from job_containers.worker import Worker

    body = deltafile("singlelayer_singledelta.json", project)
    assert push(alice, project, body).status == 200
    (message,) = queue.receive(0)
    job = Job.get(message.job_id)
    assert jobs.acquire_lease(job, "doomed", 60) and jobs.claim(job)
    deltas.take(job)  # the dying worker had taken them, and then it was killed
    queue.delete(message)
    assert statuses(alice, project, body["id"]) == ["STATUS_BUSY"]
    with an_hour_later():  # the dead worker's lease lapsed
        Worker().sweep()
        assert alice.get(f"jobs/{job.id}/").json()["status"] == "failed"
        run_jobs()  # the sweeper queued a new job for the deltas put back
    assert statuses(alice, project, body["id"]) == ["STATUS_APPLIED"]
    assert rows(data(alice, project, tmp_path), "points_xy")[0] == (1, 666, 0.1, "str1")


def test_deltas_pushed_while_a_job_runs_are_applied_by_the_next_run(alice, project, tmp_path, monkeypatch):
    from job_containers.kinds import delta_apply as deltas

    first = deltafile("singlelayer_singledelta.json", project)
    second = deltafile("singlelayer_multidelta.json", project)
    second["deltas"] = second["deltas"][1:]  # two more patches, from another client
    take = deltas.take

    def take_then_another_client_pushes(job):
        batch = take(job)
        if not alice.get(f"deltas/{project}/{second['id']}/").json():
            assert push(alice, project, second).status == 200  # while the job runs
        return batch

    monkeypatch.setattr(deltas, "take", take_then_another_client_pushes)
    assert push(alice, project, first).status == 200
    run_jobs()
    assert statuses(alice, project, first["id"]) == ["STATUS_APPLIED"]
    assert statuses(alice, project, second["id"]) == ["STATUS_APPLIED"] * 2
    applying = [j for j in alice.get(f"jobs/?project_id={project}").json() if j["type"] == "delta_apply"]
    assert [j["status"] for j in applying] == ["finished", "finished"]
    assert [r[1] for r in rows(data(alice, project, tmp_path), "points_xy")] == [666, 666, 666]


def test_geojson_layer_edits_are_new_versions_of_that_file(alice, project, tmp_path):
    body = {"version": "1.0", "id": str(uuid.uuid4()), "project": project, "files": [], "deltas": [{
        "uuid": str(uuid.uuid4()), "clientId": str(uuid.uuid4()), "localLayerId": POINTS_GEOJSON,
        "sourceLayerId": POINTS_GEOJSON, "localPk": "1", "sourcePk": "1", "method": "patch",
        "old": {"attributes": {"int": 1}}, "new": {"attributes": {"int": 42}}}]}
    assert push(alice, project, body).status == 200
    run_jobs()
    assert statuses(alice, project, body["id"]) == ["STATUS_APPLIED"]
    features = properties(data(alice, project, tmp_path, "points.geojson"))
    assert [f["int"] for f in features if f["fid"] == 1] == [42]



def test_a_deltafile_of_too_many_deltas_is_refused_with_a_413_and_stores_nothing(alice, project):
    """10,001 deltas (4 MB) reach the function, which refuses them; 100,000 (41 MB) get API
    Gateway's 413 before it (docs/api.md, "Limits")."""
    body = deltafile("singlelayer_singledelta.json", project)
    template = body["deltas"][0]
    body["deltas"] = [{**template, "uuid": str(uuid.UUID(int=i))} for i in range(10_001)]
    reply = push(alice, project, body)
    assert (reply.status, reply.code) == (413, "payload_too_large")
    assert "at most 10000 deltas" in reply.json()["message"]
    body["deltas"] = [{**template, "uuid": str(uuid.UUID(int=i))} for i in range(100_000)]
    reply = push(alice, project, body)
    assert (reply.status, reply.code) == (413, "payload_too_large")
    assert "larger than API Gateway accepts" in reply.json()["message"]
    assert alice.get(f"deltas/{project}/").json() == [] and run_jobs() == 0


def test_deleting_the_project_removes_its_deltas_jobs_and_feature_keys(alice, project):
    from chalicelib.models import ClientFeaturePk, Delta, Job, ListCount

    def counters() -> int:
        return sum(1 for count in ListCount.scan() if project in count.list_id)

    assert pushed(alice, project, "multistage_p1_c1_create.json") == ["STATUS_APPLIED"]
    assert Delta.count(project) and ClientFeaturePk.count(project) and Job.by_project.count(project)
    assert counters() >= 4  # the job and delta lists, a type of job, a deltafile
    assert alice.delete(f"projects/{project}/").status == 204
    assert (Delta.count(project), ClientFeaturePk.count(project), Job.by_project.count(project)) == (0, 0, 0)
    assert counters() == 0


def test_a_created_feature_whose_client_key_cannot_be_kept_fails_its_delta_alone(alice, project, tmp_path):
    """A create whose client key DynamoDB cannot hold (older checks let one through; stored here
    as they stored it): the feature is created, but the delta says `error` and why, instead of
    an `applied` whose later patches would miss the feature; the job's other delta is applied
    and the job finished."""
    from chalicelib.models import Delta
    from chalicelib.models.base import shared_connection

    body = deltafile("multistage_p1_c1_create.json", project)
    body["deltas"] += deltafile("multistage_p2_c2_create.json", project)["deltas"]
    assert push(alice, project, body).status == 200
    too_long = {**body["deltas"][0], "clientId": "c" * 1100}
    shared_connection().client.update_item(
        TableName=Delta.Meta.table_name, Key={"project_id": {"S": project}, "id": {"S": too_long["uuid"]}},
        UpdateExpression="SET content = :content",
        ExpressionAttributeValues={":content": {"S": json.dumps(too_long)}})
    run_jobs()
    assert statuses(alice, project, body["id"]) == ["STATUS_ERROR", "STATUS_APPLIED"]
    failed = alice.get(f"deltas/{project}/{body['id']}/").json()[0]
    assert "key could not be kept" in failed["last_feedback"]["msg"]
    (job,) = [j for j in alice.get(f"jobs/?project_id={project}").json() if j["type"] == "delta_apply"]
    assert job["status"] == "finished"
    stored = rows(data(alice, project, tmp_path), "points_xy", "fid, int")
    assert [fid for fid, _ in stored] == [1, 2, 3, 1000, 2000]
