"""The job queue's guarantees on the real local stack, with workers this test starts and kills:
a waiting package job is returned again, even forced, a job whose worker is killed ends failed
(never stuck `started`), and a delta_apply killed half-way applies every delta exactly once
after a restart (checked with the shared independent checker)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests import shared_data
from tests.e2e.stack import LocalStack
from tests.e2e.test_cli_jobs import ok, wait_for

pytestmark = pytest.mark.e2e
POINTS = 20_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    local = LocalStack(tmp_path_factory.mktemp("queue"), extra_env={
        "QFC_WORKER": "0", "QFC_JOB_LEASE_SECONDS": "2", "QFC_JOB_POLL_SECONDS": "1"})
    local.start()
    assert local.createuser("alice", "pw-alice-secret", "--email", "alice@example.com").returncode == 0
    yield local
    assert local.stop() == 0, "".join(local.output)


@pytest.fixture(scope="module")
def cli(stack):
    token = stack.login("alice", "pw-alice-secret")
    return lambda *args, **kwargs: stack.cli(*args, token=token, **kwargs)




def make_points(folder: Path, count: int) -> Path:
    subprocess.run(["/usr/bin/python3", str(shared_data.tools() / "make_points_project.py"), str(folder),
                    str(count)], check=True, capture_output=True)
    return folder


def test_a_waiting_package_job_is_returned_again_even_when_forced(cli, worker, tmp_path):
    project = tmp_path / "small"
    project.mkdir()
    shutil.copyfile(shared_data.testdata() / "app" / "self_contained.qgs", project / "project.qgs")
    pid = ok(cli("--json", "create-project", "small")).json()["id"]
    ok(cli("upload-files", pid, str(project)))
    first = ok(cli("--json", "job-trigger", pid, "package")).json()
    again = ok(cli("--json", "job-trigger", pid, "package")).json()
    forced = ok(cli("--json", "job-trigger", pid, "package", "--force")).json()
    assert again["id"] == first["id"] == forced["id"]  # it is still waiting: it will see everything
    worker()
    assert wait_for(cli, first["id"]) == "finished"
    statuses = [(j["type"], j["status"]) for j in ok(cli("--json", "list-jobs", pid)).json()]
    assert statuses == [("process_projectfile", "finished"), ("package", "finished")]


def test_a_worker_killed_half_way_through_1000_deltas_applies_each_exactly_once(cli, worker, tmp_path):
    project = make_points(tmp_path / "points", POINTS)
    pid = ok(cli("--json", "create-project", "points")).json()["id"]
    ok(cli("upload-files", pid, str(project)))
    first = worker()
    (processing,) = ok(cli("--json", "list-jobs", pid)).json()
    assert wait_for(cli, processing["id"]) == "finished"

    deltafile = tmp_path / "deltas.json"
    subprocess.run(["/usr/bin/python3", str(shared_data.tools() / "make_deltafile.py"), "make", str(project),
                    str(deltafile), "--kind", "mixed", "--count", "1000"], check=True, capture_output=True)
    content = json.loads(deltafile.read_text())
    content["project"] = pid
    deltafile.write_text(json.dumps(content))
    ok(cli("delta-push", pid, str(deltafile)))
    (job,) = ok(cli("--json", "list-jobs", pid, "--type", "delta_apply")).json()
    while ok(cli("--json", "job-status", job["id"])).json()["status"] != "started":
        time.sleep(0.05)
    time.sleep(0.3)  # into the download or the QGIS core
    os.kill(first.pid, signal.SIGKILL)  # its QGIS child dies with it
    first.wait()
    assert ok(cli("--json", "job-status", job["id"])).json()["status"] == "started"

    worker()  # the restart: its sweeper fails the abandoned job and applies the deltas again
    assert wait_for(cli, job["id"]) == "failed"
    detail = ok(cli("--json", "job-status", job["id"])).json()
    assert detail["status"] == "failed"
    deadline = time.monotonic() + 120
    while True:
        jobs = ok(cli("--json", "list-jobs", pid, "--type", "delta_apply")).json()
        if len(jobs) > 1 and all(j["status"] in ("finished", "failed") for j in jobs):
            break
        assert time.monotonic() < deadline, jobs
        time.sleep(0.5)
    assert sorted(j["status"] for j in jobs) == ["failed", "finished"]

    edited = tmp_path / "edited"
    ok(cli("download-files", pid, str(edited)))
    (edited / "meta.json").write_text((project / "meta.json").read_text())
    verified = subprocess.run(["/usr/bin/python3", str(shared_data.tools() / "make_deltafile.py"), "verify",
                               str(edited), str(deltafile)], capture_output=True, text=True)
    result = json.loads(verified.stdout)
    assert result["ok"], result
    assert result["checked"] == {"create": 334, "patch": 333, "delete": 333}


def _waiting_children(worker: subprocess.Popen) -> set[int]:
    """The worker's child processes running job_containers.child."""
    found = set()
    for task in Path(f"/proc/{worker.pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            if b"job_containers.child" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(int(pid))
    return found


def test_a_worker_keeps_a_child_ready_for_the_next_job_and_removes_it_when_stopped(cli, worker, tmp_path):
    project = tmp_path / "ready"
    project.mkdir()
    shutil.copyfile(shared_data.testdata() / "app" / "self_contained.qgs", project / "project.qgs")
    process = worker()
    deadline = time.monotonic() + 30
    while not (before := _waiting_children(process)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(before) == 1  # before any job
    pid = ok(cli("--json", "create-project", "ready")).json()["id"]
    ok(cli("upload-files", pid, str(project)))
    job = ok(cli("--json", "job-trigger", pid, "package")).json()
    assert wait_for(cli, job["id"]) == "finished"
    deadline = time.monotonic() + 30
    while not (after := _waiting_children(process)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(after) == 1 and after != before  # used up by a job, and the next one waits
    folders = set(Path(tempfile.gettempdir()).glob(f"qfc-child-{process.pid}-*"))
    assert len(folders) == 1
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert not any(Path(f"/proc/{child}").exists() for child in after)
    assert not any(folder.exists() for folder in folders)
