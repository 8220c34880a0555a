"""Jobs through the API and the real worker: uploads processed on their own, packages made and
served, refusals, and the queue's guarantees (a redelivered message runs nothing twice, one job
per project at a time, an abandoned job ends failed)."""

from __future__ import annotations

import io
import logging
import sqlite3

import pytest
from PIL import Image

from chalicelib.observability import logger
from tests import shared_data
from tests.files_helpers import upload
from tests.jobs_helpers import an_hour_later, fetch, run_jobs, upload_tree

BEE_FILES = ["bees.gpkg", "bumblebees.gpkg", "simple_bee_farming.qgs"]


def _jobs(client, pid: str) -> list[dict]:
    return client.get(f"jobs/?project_id={pid}").json()


@pytest.fixture
def bees(alice) -> str:
    """alice's project with simple_bee_farming uploaded and processed."""
    pid = alice.create_project("bees")["id"]
    upload_tree(alice, pid, shared_data.testdata() / "worker", BEE_FILES)
    run_jobs()
    return pid


def test_an_uploaded_project_is_processed_on_its_own(alice):
    pid = alice.create_project("bees")["id"]
    upload_tree(alice, pid, shared_data.testdata() / "worker", BEE_FILES)
    (job,) = _jobs(alice, pid)  # the data files came first: only the project file made a job
    assert (job["type"], job["status"]) == ("process_projectfile", "queued")
    assert alice.get(f"projects/{pid}/").json()["status"] == "busy"

    run_jobs()
    (job,) = _jobs(alice, pid)
    assert job["status"] == "finished" and job["started_at"] and job["finished_at"]
    detail = alice.get(f"jobs/{job['id']}/").json()
    details = detail["feedback"]["outputs"]["project_details"]["project_details"]
    layers = {layer["name"]: layer for layer in details["layers_by_id"].values()}
    counts = {name: (layer["is_valid"], layer["feature_count"]) for name, layer in layers.items()
              if layer["provider_name"] == "ogr"}
    expected = {}
    for gpkg, table in (("bees.gpkg", "apiary"), ("bumblebees.gpkg", "area")):
        with sqlite3.connect(shared_data.testdata() / "worker" / gpkg) as db:
            expected[table] = db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    assert sorted(count for _, count in counts.values()) == sorted(expected.values())
    assert all(valid for valid, _ in counts.values())
    assert details["crs"] == "EPSG:3857"
    assert "[job] process_projectfile: done" in detail["output"]

    thumbnail = Image.open(io.BytesIO(fetch(alice, f"files/thumbnails/{pid}/")))
    assert thumbnail.format == "PNG" and thumbnail.size == (100, 100)
    assert alice.get(f"projects/{pid}/").json()["status"] == "ok"


def test_a_broken_project_file_fails_its_job_and_the_project(alice, testdata_copy):
    pid = alice.create_project("broken")["id"]
    upload_tree(alice, pid, testdata_copy("app/delta"), ["points.geojson", "polygons.geojson", "broken.qgs"])
    run_jobs()
    (job,) = _jobs(alice, pid)
    assert job["status"] == "failed"
    detail = alice.get(f"jobs/{job['id']}/").json()
    assert detail["feedback"]["error_type"] == "INVALID_PROJECT_FILE"
    assert "line" in detail["feedback"]["error"]
    assert alice.get(f"projects/{pid}/").json()["status"] == "failed"


def test_package_jobs_dedupe_force_and_serve_the_package(alice, bees):
    assert alice.get(f"packages/{bees}/latest/").code == "invalid_job"  # never packaged
    assert alice.get(f"projects/{bees}/").json()["needs_repackaging"] is True
    first = alice.post("jobs/", json={"project_id": bees, "type": "package"})
    assert first.status == 201 and first.json()["status"] in ("pending", "queued")
    again = alice.post("jobs/", data={"project_id": bees, "type": "package", "force": "0"})
    assert (again.status, again.json()["id"]) == (200, first.json()["id"])
    forced = alice.post("jobs/", data={"project_id": bees, "type": "package", "force": "1"})
    assert (forced.status, forced.json()["id"]) == (200, first.json()["id"])  # it is still waiting

    run_jobs()
    statuses = {job["id"]: job["status"] for job in _jobs(alice, bees) if job["type"] == "package"}
    assert statuses == {first.json()["id"]: "finished"}
    latest = alice.get(f"packages/{bees}/latest/").json()
    assert latest["status"] == "finished" and latest["package_id"] in statuses
    assert sorted(f["name"] for f in latest["files"]) == ["data.gpkg", "simple_bee_farming_qfield.qgs"]
    assert all(layer["is_valid"] for layer in latest["layers"].values() if layer["provider_name"] == "ogr")
    assert latest["packaged_at"] and latest["data_last_updated_at"]
    project = alice.get(f"projects/{bees}/").json()
    assert project["needs_repackaging"] is False and project["data_last_packaged_at"]

    for item in latest["files"]:
        data = fetch(alice, f"packages/{bees}/latest/files/{item['name']}/")
        assert len(data) == item["size"]
    gpkg = fetch(alice, f"packages/{bees}/latest/files/data.gpkg/")
    assert alice.get(f"packages/{bees}/latest/files/data.gpkg/",
                     headers={"If-None-Match": latest["files"][0]["md5sum"]}).status in (302, 304)
    assert gpkg[:16] == b"SQLite format 3\x00"

    upload(alice, bees, "notes.txt", b"new data")
    assert alice.get(f"projects/{bees}/").json()["needs_repackaging"] is True


def test_a_newer_failed_package_does_not_hide_the_last_good_one(alice, bees, testdata_copy):
    alice.post("jobs/", json={"project_id": bees, "type": "package"})
    run_jobs()
    good = alice.get(f"packages/{bees}/latest/").json()["package_id"]
    broken = (testdata_copy("app/delta") / "broken.qgs").read_bytes()
    assert upload(alice, bees, "simple_bee_farming.qgs", broken).status == 201
    failed = alice.post("jobs/", json={"project_id": bees, "type": "package", "force": True}).json()
    run_jobs()
    assert alice.get(f"jobs/{failed['id']}/").json()["status"] == "failed"
    latest = alice.get(f"packages/{bees}/latest/").json()
    assert (latest["package_id"], latest["status"]) == (good, "finished")


@pytest.mark.parametrize("body, code", [
    ({"type": "package"}, "validation_error"),
    ({"type": "unknown"}, "validation_error"),
    ({"type": "package", "force": "maybe"}, "validation_error"),
    ({"type": "create_project"}, "validation_error"),
])
def test_bad_job_requests_are_400(alice, bees, body, code):
    if body.get("type") != "package" or "force" in body:
        body = {"project_id": bees, **body}
    reply = alice.post("jobs/", json=body)
    assert (reply.status, reply.code) == (400, code)


def test_no_qgis_file_unknown_job_and_permissions(users, alice, bees):
    empty = alice.create_project("empty")["id"]
    for job_type in ("package", "process_projectfile", "delta_apply"):
        reply = alice.post("jobs/", json={"project_id": empty, "type": job_type})
        assert (reply.status, reply.code) == (400, "no_qgis_project")
    assert alice.get("jobs/00000000-0000-0000-0000-000000000000/").status == 404

    reader = users("reader")
    alice.post(f"collaborators/{bees}/", json={"collaborator": "reader", "role": "reader"})
    assert reader.get(f"jobs/?project_id={bees}").status == 200
    assert reader.post("jobs/", json={"project_id": bees, "type": "process_projectfile"}).status == 403
    assert reader.post("jobs/", json={"project_id": bees, "type": "package"}).status == 201
    stranger = users("stranger")
    assert stranger.get(f"jobs/?project_id={bees}").status == 403
    job_id = _jobs(alice, bees)[0]["id"]
    assert stranger.get(f"jobs/{job_id}/").status == 403

    template = alice.create_project("tpl", project_type="template")["id"]
    upload(alice, template, "p.qgs", (shared_data.testdata() / "app" / "self_contained.qgs").read_bytes())
    assert alice.post("jobs/", json={"project_id": template, "type": "package"}).status == 403


def test_jobs_list_filters_by_type_and_paginates(alice, bees):
    alice.post("jobs/", json={"project_id": bees, "type": "package"})
    assert [j["type"] for j in alice.get(f"jobs/?project_id={bees}&type=package").json()] == ["package"]
    page = alice.get(f"jobs/?project_id={bees}&limit=1")
    assert len(page.json()) == 1 and page.headers["X-Total-Count"] == "2" and "X-Next-Page" in page.headers
    assert alice.get("jobs/?project_id=pizza").code == "validation_error"


def test_a_redelivered_message_does_not_run_a_finished_job_again(alice, bees):
    from chalicelib.adapters import job_queue as queue
    from chalicelib.models import Job

    job_id = alice.post("jobs/", json={"project_id": bees, "type": "package"}).json()["id"]
    run_jobs()
    before = Job.get(job_id)
    queue.send(job_id)  # as SQS may deliver a message twice
    assert run_jobs() == 1
    after = Job.get(job_id)
    assert (after.status, after.attempts, after.started_at) == ("finished", 1, before.started_at)


def test_two_workers_never_run_jobs_of_one_project_at_once(alice, bees, override_settings):
    from chalicelib.adapters import job_queue as queue
    from chalicelib.models import Job
    from chalicelib.services import jobs
    from job_containers.worker import Worker

    override_settings(job_busy_retry_seconds=0)
    first = alice.post("jobs/", json={"project_id": bees, "type": "package"}).json()["id"]
    second = alice.post("jobs/", json={"project_id": bees, "type": "process_projectfile"}).json()["id"]
    other_worker = Worker()
    assert jobs.acquire_lease(Job.get(first), other_worker.id, 60)  # the other worker runs `first`
    Job.get(first).update(actions=[Job.status.set("started")])
    for message in queue.receive(0):
        Worker().handle(message)  # both messages: neither job may start
    assert Job.get(second).status == "queued"
    assert Job.get(first).status == "started"  # untouched by this worker
    jobs.release_lease(Job.get(first))
    run_jobs()
    assert Job.get(second).status == "finished"


def test_a_job_whose_worker_died_ends_failed_and_the_project_is_not_busy(alice, bees):
    from chalicelib.adapters import job_queue as queue
    from chalicelib.models import Job
    from chalicelib.services import jobs
    from job_containers.worker import Worker

    job_id = alice.post("jobs/", json={"project_id": bees, "type": "package"}).json()["id"]
    job = Job.get(job_id)
    assert jobs.acquire_lease(job, "a-worker-that-dies", 60) and jobs.claim(job)
    for message in queue.receive(0):
        queue.delete(message)  # the dead worker had received it
    assert alice.get(f"projects/{bees}/").json()["status"] == "busy"
    with an_hour_later():
        Worker().sweep()
    detail = alice.get(f"jobs/{job_id}/").json()
    assert detail["status"] == "failed" and "stopped before it finished" in detail["output"]
    assert alice.get(f"projects/{bees}/").json()["status"] == "ok"


def test_a_dead_lettered_job_is_failed(alice, bees):
    from chalicelib.adapters import aws
    from chalicelib.adapters import job_queue as queue

    job_id = alice.post("jobs/", json={"project_id": bees, "type": "package"}).json()["id"]
    for message in queue.receive(0):
        queue.delete(message)
    aws.sqs().send_message(QueueUrl=queue.dead_letter_queue_url(), MessageBody=f'{{"job_id": "{job_id}"}}')
    from job_containers.worker import Worker

    Worker().sweep()
    detail = alice.get(f"jobs/{job_id}/").json()
    assert detail["status"] == "failed" and "failed 3 times" in detail["output"]
    assert alice.get(f"projects/{bees}/").json()["status"] == "ok"


def test_a_waiting_job_whose_message_was_lost_runs_when_a_worker_starts(alice, bees):
    from chalicelib.adapters import job_queue as queue
    from job_containers.worker import Worker

    job_id = alice.post("jobs/", json={"project_id": bees, "type": "package"}).json()["id"]
    for message in queue.receive(0):
        queue.delete(message)  # lost, as across a restart of the local stand-in
    Worker().sweep()  # a running worker waits for a lost message to be long overdue
    assert run_jobs() == 0
    Worker().sweep(starting=True)
    assert run_jobs() == 1
    assert alice.get(f"jobs/{job_id}/").json()["status"] == "finished"


def test_localized_layers_are_read_from_the_owners_shared_datasets(alice):
    shared = alice.create_project("shared_datasets")["id"]
    gpkg = (shared_data.testdata() / "app" / "bumblebees.gpkg").read_bytes()
    upload(alice, shared, "bumblebees.gpkg", gpkg)
    pid = alice.create_project("localized")["id"]
    qgs = (shared_data.testdata() / "app" / "simple_bumblebees_correct_localized.qgs").read_bytes()
    assert upload(alice, pid, "project.qgs", qgs).status == 201
    alice.post("jobs/", json={"project_id": pid, "type": "package"})
    run_jobs()
    (processed,) = [job for job in _jobs(alice, pid) if job["type"] == "process_projectfile"]
    details = alice.get(f"jobs/{processed['id']}/").json()["feedback"]["outputs"]["project_details"]
    layer = details["project_details"]["layers_by_id"]["valid_localized_point_layer_id"]
    assert (layer["is_localized"], layer["is_valid"], layer["feature_count"], layer["filename"]) == (
        True, True, 35, "bumblebees.gpkg")
    missing = details["project_details"]["layers_by_id"]["invalid_point_layer_id"]
    assert missing["is_valid"] is False

    latest = alice.get(f"packages/{pid}/latest/").json()
    packaged = latest["layers"]["valid_localized_point_layer_id"]
    assert (packaged["is_localized"], packaged["is_valid"]) == (True, True)
    assert packaged["filename"] == "bumblebees.gpkg"
    assert sorted(f["name"] for f in latest["files"]) == ["project_qfield.qgs"]  # QField fetches it itself
    project_file = fetch(alice, f"packages/{pid}/latest/files/project_qfield.qgs/").decode()
    assert 'localized:bumblebees.gpkg|layername=apiary' in project_file
    assert alice.get(f"projects/{pid}/").json()["shared_datasets_project_id"] == shared


class _LoggedErrors(logging.Handler):
    """What the worker logs at ERROR level, which an operator's alarm would page for."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def logged_errors() -> _LoggedErrors:
    errors = _LoggedErrors()
    logger.addHandler(errors)
    return errors


@pytest.mark.parametrize("job_type", ["package", "process_projectfile"])
def test_a_project_deleted_while_its_job_runs_leaves_nothing_behind(alice, bees, monkeypatch, job_type):
    """The deletion (and its purge) comes while the job's QGIS core runs: what the job then
    stores (its report, its package files, a thumbnail) must not outlive the project, nor may
    anything of the project come back (its item, its counters). Nor is it logged as the
    worker's fault, which would page someone for an ordinary deletion."""
    from chalicelib.models import Project
    from chalicelib.services import project_deletion
    from job_containers.workspace import Workspace
    from tests.test_project_deletion import NOTHING, leftovers

    if job_type == "package":
        assert alice.post("jobs/", json={"project_id": bees, "type": job_type}).status == 201
    else:
        upload_tree(alice, bees, shared_data.testdata() / "worker", ["simple_bee_farming.qgs"])
    run_core = Workspace.run_core

    def deleted_meanwhile(self, *args, **kwargs):
        result = run_core(self, *args, **kwargs)
        project_deletion.request_deletion(Project.get(bees))  # the purge runs inline, now
        assert leftovers(bees) == NOTHING
        return result

    monkeypatch.setattr(Workspace, "run_core", deleted_meanwhile)
    errors = logged_errors()
    try:
        run_jobs()
    finally:
        logger.removeHandler(errors)
    assert alice.get(f"projects/{bees}/").status == 404
    assert leftovers(bees) == NOTHING
    assert errors.messages == []
