"""How many jobs one project and one owner may have waiting or running: requests for a job of a
type already waiting get that job back, and a request over a limit is refused with 429
`too_many_jobs`; the counters behind the limits come back to zero however jobs end (finished,
failed, abandoned by their worker, dead-lettered, their project transferred or deleted)."""

from __future__ import annotations

import pytest

from tests.files_helpers import qgs, upload
from tests.jobs_helpers import an_hour_later, run_jobs
from tests.test_input_findings import assert_refused


def _project(client, name: str, **fields) -> str:
    """A project with a QGIS file; its upload queued a process_projectfile job (not run)."""
    project_id = client.create_project(name, **fields)["id"]
    assert upload(client, project_id, "project.qgs", qgs()).status == 201
    return project_id


def _job(client, project_id: str, job_type: str, **fields):
    return client.post("jobs/", json={"project_id": project_id, "type": job_type, **fields})


def _jobs(client, project_id: str, job_type: str | None = None) -> list[dict]:
    jobs = client.get(f"jobs/?project_id={project_id}").json()
    return [job for job in jobs if job_type in (None, job["type"])]


def _start(job_id: str) -> None:
    """Mark a waiting job started, as a worker that took it does."""
    from chalicelib.models import Job
    from chalicelib.services import jobs

    assert jobs.claim(Job.get(job_id))


def active(project_id: str, owner: str = "alice") -> tuple[int, int]:
    """The counters the limits read: the project's and its owner's jobs not done yet."""
    from chalicelib.models import ListCount, Project
    from chalicelib.models.counts import count_id

    return int(Project.get(project_id).active_jobs), ListCount.of(count_id("active-jobs", owner))


def test_a_reader_forcing_package_after_package_gets_the_waiting_one_back(users, alice):
    public = _project(alice, "public", is_public=True)
    reader = users("reader")
    replies = [_job(reader, public, "package", force=True) for _ in range(15)]
    assert [reply.status for reply in replies] == [201] + [200] * 14
    assert len({reply.json()["id"] for reply in replies}) == 1
    assert len(_jobs(alice, public, "package")) == 1


def test_force_while_a_package_runs_makes_one_new_job_which_later_forces_get(alice):
    pid = _project(alice, "survey")
    running = _job(alice, pid, "package").json()["id"]
    _start(running)
    assert (_job(alice, pid, "package").status, _job(alice, pid, "package").json()["id"]) == (200, running)
    forced = _job(alice, pid, "package", force=True)
    assert forced.status == 201 and forced.json()["id"] != running
    again = [_job(alice, pid, "package", force=True) for _ in range(5)]
    assert {(reply.status, reply.json()["id"]) for reply in again} == {(200, forced.json()["id"])}
    # Without force, the newest package job waiting or running.
    assert _job(alice, pid, "package").json()["id"] == forced.json()["id"]
    assert len(_jobs(alice, pid, "package")) == 2


@pytest.mark.parametrize("job_type", ["process_projectfile", "delta_apply"])
def test_a_job_of_the_same_type_already_waiting_is_returned_as_documented(alice, job_type):
    pid = _project(alice, "survey")
    first = _job(alice, pid, job_type)
    assert first.status in (200, 201)  # the upload queued a process_projectfile job already
    for _ in range(3):
        again = _job(alice, pid, job_type)
        assert (again.status, again.json()["id"]) == (200, first.json()["id"])
    assert len(_jobs(alice, pid, job_type)) == 1
    _start(first.json()["id"])
    assert _job(alice, pid, job_type).status == 201  # one running: the next one waits behind it


def test_a_project_at_its_limit_gets_429_for_a_new_job_but_its_waiting_jobs_back(alice, override_settings):
    override_settings(max_active_jobs_per_project=2)
    pid = _project(alice, "survey")  # 1: the upload's process_projectfile job
    assert _job(alice, pid, "package").status == 201  # 2
    reply = _job(alice, pid, "delta_apply")
    assert_refused(reply, 429, "too_many_jobs")
    assert "2 jobs" in reply.json()["message"]
    assert_refused(alice.post(f"deltas/apply/{pid}/"), 429, "too_many_jobs")
    assert _job(alice, pid, "package").status == 200  # the waiting one, not a new job
    assert len(_jobs(alice, pid)) == 2 and active(pid) == (2, 2)


def test_an_owner_at_the_limit_gets_429_on_any_of_its_projects_but_others_do_not(
        users, alice, override_settings):
    override_settings(max_active_jobs_per_owner=3)
    first, second = _project(alice, "first"), _project(alice, "second")  # 2 processing jobs
    assert _job(alice, first, "package").status == 201  # 3
    assert_refused(_job(alice, second, "package"), 429, "too_many_jobs")
    bob = users("bob")
    assert _job(bob, _project(bob, "elsewhere"), "package").status == 201
    # What uploads start is never refused: the data is stored and must be processed.
    assert upload(alice, second, "notes.txt", b"new data").status == 201
    assert _project(alice, "third") and active(second)[1] == 4
    run_jobs()
    assert active(first) == (0, 0) and active(second) == (0, 0)
    assert _job(alice, second, "package").status == 201


def test_the_counters_come_back_to_zero_when_jobs_finish_or_fail(alice, testdata_copy):
    pid = _project(alice, "survey")
    _job(alice, pid, "package")
    broken = alice.create_project("broken")["id"]
    folder = testdata_copy("app/delta")
    for name in ("points.geojson", "polygons.geojson", "broken.qgs"):
        assert upload(alice, broken, name, (folder / name).read_bytes()).status == 201
    assert active(pid) == (2, 3) and active(broken) == (1, 3)
    run_jobs()
    assert {job["status"] for job in _jobs(alice, broken)} == {"failed"}
    assert active(pid) == (0, 0) and active(broken) == (0, 0)


def test_the_counters_come_back_to_zero_when_the_sweeper_fails_abandoned_jobs(alice):
    from chalicelib.adapters import aws
    from chalicelib.adapters import job_queue as queue
    from chalicelib.models import Job
    from chalicelib.services import jobs
    from job_containers.worker import Worker

    pid = _project(alice, "survey")
    dead_lettered = _job(alice, pid, "package").json()["id"]
    (abandoned,) = [job["id"] for job in _jobs(alice, pid, "process_projectfile")]
    assert jobs.acquire_lease(Job.get(abandoned), "a-worker-that-dies", 60) and jobs.claim(Job.get(abandoned))
    for message in queue.receive(0):
        queue.delete(message)  # the dead worker had received its own; the other kept failing
    aws.sqs().send_message(QueueUrl=queue.dead_letter_queue_url(),
                           MessageBody=f'{{"job_id": "{dead_lettered}"}}')
    assert active(pid) == (2, 2)
    with an_hour_later():
        Worker().sweep()
    assert {job["status"] for job in _jobs(alice, pid)} == {"failed"}
    assert active(pid) == (0, 0)


def test_a_job_lowers_the_count_of_the_owner_it_was_counted_for_once(users, alice):
    bob = users("bob")
    pid = _project(alice, "moving")
    assert alice.patch(f"projects/{pid}/", data={"owner": "bob"}).status == 200
    assert active(pid, "alice") == (1, 1) and active(pid, "bob") == (1, 0)
    assert _job(bob, pid, "package").status == 201
    assert active(pid, "bob") == (2, 1)
    run_jobs()
    assert active(pid, "alice") == (0, 0) and active(pid, "bob") == (0, 0)


def test_deleting_a_project_with_jobs_not_done_gives_their_counts_back(alice):
    from chalicelib.models import Job
    from chalicelib.services import jobs

    pid = _project(alice, "doomed")
    running = _job(alice, pid, "package").json()["id"]
    _start(running)
    job = Job.get(running)
    other = _project(alice, "kept")
    assert active(other) == (1, 3)
    assert alice.delete(f"projects/{pid}/").status == 204
    assert active(other) == (1, 1)
    jobs.retire(job)  # the worker of the running job, finishing late: nothing more is lowered
    assert active(other) == (1, 1)
