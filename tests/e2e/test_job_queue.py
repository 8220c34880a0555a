"""The job queue's guarantees on the real local stack, with workers this test starts and kills:
a waiting package job is returned again, even forced, a job whose worker is killed ends failed
(never stuck `started`), and a delta_apply killed while its QGIS core applies the deltas applies
every delta exactly once after a restart (checked with the shared independent checker).

The stack's workers make their folders in a temporary folder of the test's own (TMPDIR), where
the test sees what a job is doing, and which no other run on the machine shares.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests import shared_data
from tests.e2e.stack import LocalStack
from tests.e2e.test_cli_jobs import ok, wait_for
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e
POINTS = 20_000


@pytest.fixture(scope="module")
def job_tmp() -> Path:
    """The workers' TMPDIR. Every user may pass through it, as through /tmp: a worker running as
    root hands each job folder to the job's own user."""
    folder = Path(tempfile.mkdtemp(prefix="qfc-test-queue-tmp-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, job_tmp):
    local = LocalStack(tmp_path_factory.mktemp("queue"), extra_env={
        "QFC_WORKER": "0", "QFC_JOB_LEASE_SECONDS": "2", "QFC_JOB_POLL_SECONDS": "1", "TMPDIR": str(job_tmp)})
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


def _in_its_core(job_tmp: Path, worker: subprocess.Popen, job_id: str) -> Path | None:
    """The job's folder while the worker's QGIS child runs its core: the request handed over, no
    report yet."""
    for folder in job_tmp.glob(f"qfc-job-{worker.pid}-{job_id}-*"):
        if (folder / "request.json").exists() and not (folder / "feedback.json").exists():
            return folder
    return None


def test_a_worker_killed_while_its_core_applies_1000_deltas_applies_each_exactly_once(cli, worker, tmp_path,
                                                                                      job_tmp):
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
    folder = wait_until(lambda: _in_its_core(job_tmp, first, job["id"]), "the job's core never started",
                        interval=0.01)
    qgis_children = _qgis_children(first)  # the one running the core, and the next one, ready
    assert qgis_children
    worker.kill(first)
    assert not (folder / "feedback.json").exists()  # the kill landed while the core ran
    # Its QGIS children die with it (the kernel kills them), the one in the core included: it
    # never finishes its work, which would end with its report.
    wait_until(lambda: not any(_alive(child) for child in qgis_children), "a QGIS child outlived its worker")
    assert not (folder / "feedback.json").exists()
    assert ok(cli("--json", "job-status", job["id"])).json()["status"] == "started"

    worker()  # the restart: its sweeper fails the abandoned job and applies the deltas again
    assert wait_for(cli, job["id"]) == "failed"

    def all_done() -> list[dict] | None:
        jobs = ok(cli("--json", "list-jobs", pid, "--type", "delta_apply")).json()
        return jobs if len(jobs) > 1 and all(j["status"] in ("finished", "failed") for j in jobs) else None

    jobs = wait_until(all_done, "the deltas were not applied again", interval=0.5)
    assert sorted(j["status"] for j in jobs) == ["failed", "finished"]

    edited = tmp_path / "edited"
    ok(cli("download-files", pid, str(edited)))
    (edited / "meta.json").write_text((project / "meta.json").read_text())
    verified = subprocess.run(["/usr/bin/python3", str(shared_data.tools() / "make_deltafile.py"), "verify",
                               str(edited), str(deltafile)], capture_output=True, text=True)
    result = json.loads(verified.stdout)
    assert result["ok"], result
    assert result["checked"] == {"create": 334, "patch": 333, "delete": 333}


def _alive(pid: int) -> bool:
    """Running (not ended, nor a zombie left for its new parent to reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _qgis_children(worker: subprocess.Popen) -> set[int]:
    """The worker's child processes running job_containers.child."""
    found = set()
    for task in Path(f"/proc/{worker.pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            with contextlib.suppress(FileNotFoundError):  # it ended meanwhile
                if b"job_containers.child" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.add(int(pid))
    return found


def test_a_worker_keeps_a_child_ready_for_the_next_job_and_removes_it_when_stopped(cli, worker, tmp_path,
                                                                                   job_tmp, stack):
    project = tmp_path / "ready"
    project.mkdir()
    shutil.copyfile(shared_data.testdata() / "app" / "self_contained.qgs", project / "project.qgs")
    process = worker()
    before = wait_until(lambda: _qgis_children(process), "no child was started ahead")
    assert len(before) == 1  # before any job
    pid = ok(cli("--json", "create-project", "ready")).json()["id"]
    ok(cli("upload-files", pid, str(project)))
    job = ok(cli("--json", "job-trigger", pid, "package")).json()
    assert wait_for(cli, job["id"]) == "finished"
    after = wait_until(lambda: _qgis_children(process) - before, "no child was started after the job")
    assert len(_qgis_children(process)) == 1  # used up by a job, and the next one waits
    folders = set(job_tmp.glob(f"qfc-child-{process.pid}-*"))
    assert len(folders) == 1
    stack.stop_worker(process)
    assert not any(Path(f"/proc/{child}").exists() for child in after)
    assert not any(folder.exists() for folder in folders)
