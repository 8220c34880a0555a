"""A job core runs in a child process of its own: its time, memory and a lost lease stop it with a
readable reason, a failing process is reported in words, the worker's next child is started
ahead (QGIS already loaded) and is used once, and no child leaves files behind. The child has
nothing to steal: an environment of its own without the worker's variables, and, when the worker
is root, a uid of its own and folders only that uid can read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from job_containers import isolation, sandbox
from tests import shared_data
from tests.waiting import wait_until

LIMITS = {"timeout_seconds": 120, "memory_mb": 3000}


@pytest.fixture
def workdir() -> Path:
    """A job folder as the runner makes them (the child may not reach pytest's own folders)."""
    with sandbox.job_folder("test") as root:
        yield root


@pytest.fixture
def project(workdir: Path) -> dict:
    """process_projectfile's arguments for a copy of the app's self-contained project."""
    project_dir, out_dir = workdir / "project", workdir / "out"
    project_dir.mkdir()
    out_dir.mkdir()
    shutil.copyfile(shared_data.testdata() / "app" / "self_contained.qgs", project_dir / "project.qgs")
    sandbox.give(workdir)
    return {"project_dir": str(project_dir), "project_file": "project.qgs", "out_dir": str(out_dir),
            "localized_dir": None}


@pytest.fixture
def children_folders():
    """This process's child folders that exist now, to compare with."""
    return lambda: set(Path(tempfile.gettempdir()).glob(f"qfc-child-{os.getpid()}-*"))


@pytest.fixture
def prepared_child():
    isolation.prepare_a_child()
    yield
    isolation._discard_ready()


def _run(project: dict, workdir: Path, **limits):
    workdir.mkdir(exist_ok=True)
    sandbox.give(workdir)
    return isolation.run_core("process_projectfile", project, workdir, **{**LIMITS, **limits})


def test_a_core_runs_and_its_folder_is_removed(project, workdir, children_folders):
    before = children_folders()
    result = _run(project, workdir)
    assert result.error is None, result.output
    assert result.feedback["outputs"]["project_details"]["project_details"]["layers_by_id"]
    assert "[job] process_projectfile: done" in result.output
    assert children_folders() == before


@pytest.mark.parametrize(("limits", "reason"), [
    ({"timeout_seconds": 0.2}, "The job took longer than 0.2 s and was stopped."),
    ({"memory_mb": 20}, "The job used more than 20 MB of memory and was stopped."),
    ({"should_stop": lambda: True}, "The job was stopped: its worker lost its hold on the project."),
])
def test_limits_stop_the_child_with_a_reason(project, workdir, children_folders, limits, reason):
    before = children_folders()
    result = _run(project, workdir, **limits)
    assert result.failure == reason
    assert result.feedback is None
    assert children_folders() == before


def test_a_child_that_fails_is_reported_in_words(workdir):
    result = isolation.run_core("no_such_core", {}, workdir, **LIMITS)
    assert result.failure == "The job process exited with code 1."
    assert "KeyError: 'no_such_core'" in result.output  # its traceback is in the job's log


def test_a_prepared_child_runs_the_next_job_only(project, workdir, prepared_child):
    ready = isolation._ready
    assert ready is not None and ready.process.poll() is None
    first = _run(project, workdir / "one")
    assert first.error is None, first.output
    assert ready.process.poll() is not None  # it ran that job and ended
    assert not ready.folder.exists()
    assert isolation._ready is None  # the next one is the worker's to prepare, between jobs
    second = _run(project, workdir / "two")  # started on demand
    assert second.error is None, second.output


@pytest.mark.parametrize("prefix", ["qfc-child-", "qfc-job-"])
def test_a_killed_workers_folders_are_removed_when_a_worker_starts(tmp_path, monkeypatch, prefix):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    left, ours = tmp_path / f"{prefix}{dead.pid}-abc", tmp_path / f"{prefix}{os.getpid()}-abc"
    for folder in (left, ours):
        (folder / "project").mkdir(parents=True)
        (folder / "project" / "tenant.gpkg").write_bytes(b"tenant data")
    sandbox.remove_folders_of_killed_workers()
    assert not left.exists() and ours.exists()


def test_a_prepared_child_that_died_is_replaced(project, workdir, prepared_child):
    isolation._ready.process.kill()
    isolation._ready.process.wait()
    result = _run(project, workdir)
    assert result.error is None, result.output


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_a_child_starts_with_none_of_the_workers_variables(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "worker-secret-key")
    monkeypatch.setenv("QFC_ADMIN_PASSWORD", "worker-admin-password")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/worker-guid")
    isolation.prepare_a_child()
    try:
        child = isolation._ready
        environment = Path(f"/proc/{child.process.pid}/environ").read_bytes().split(b"\0")
        names = {entry.split(b"=")[0].decode() for entry in environment if entry}
        assert not {name for name in names if name.startswith(("AWS_", "QFC_"))}
        assert b"worker-secret-key" not in b"".join(environment)
        assert b"worker-guid" not in b"".join(environment)
        assert f"HOME={child.folder}".encode() in environment
    finally:
        isolation._discard_ready()


def test_a_child_of_a_root_worker_runs_as_a_user_of_its_own_once_qgis_is_loaded():
    identity = sandbox.identity()
    assert identity.separate == (os.geteuid() == 0)
    isolation.prepare_a_child()
    try:
        child = isolation._ready
        expected = identity.uid if identity.separate else os.geteuid()
        wait_until(lambda: _uid_of(child.process.pid) == expected, "the child kept the worker's uid")
        assert child.folder.stat().st_uid == expected
        assert child.folder.stat().st_mode & 0o777 == 0o700
    finally:
        isolation._discard_ready()


def _cat_as_the_childs_user(path) -> subprocess.CompletedProcess:
    identity = sandbox.identity()
    as_child = {"user": identity.uid, "group": identity.gid, "extra_groups": []} if identity.separate else {}
    return subprocess.run(["cat", str(path)], capture_output=True, **as_child)


def test_the_childs_user_reads_neither_the_workers_environment_nor_its_folders():
    """What the uid of its own buys when the worker is root: the child's user cannot read the
    worker's /proc/<pid>/environ, a folder of the worker's (the local stack's data folder is
    0700), nor another worker's job folder. A worker that is not root can only keep its own
    memory and environment from its children (it makes itself non-dumpable)."""
    data = Path(tempfile.mkdtemp(prefix="qfc-test-data-"))  # 0700, as the local stack's
    (data / "admin-credentials").write_text("admin s3cret")
    other_job = Path(tempfile.mkdtemp(prefix="qfc-test-job-"))
    (other_job / "tenant.gpkg").write_text("another tenant's data")
    code = ("from job_containers import sandbox; import sys; sandbox.worker_process_guard();"
            " print('guarded', flush=True); sys.stdin.read()")
    worker = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env={**os.environ, "WORKER_SECRET": "worker-s3cret"})
    try:
        assert worker.stdout.readline() == b"guarded\n"
        unreadable = [f"/proc/{worker.pid}/environ"]
        if sandbox.identity().separate:
            unreadable += [data / "admin-credentials", other_job / "tenant.gpkg"]
        for path in unreadable:
            attempt = _cat_as_the_childs_user(path)
            assert attempt.returncode != 0 and b"s3cret" not in attempt.stdout, path
            assert b"Permission denied" in attempt.stderr
    finally:
        worker.kill()
        worker.wait()
        shutil.rmtree(other_job)
        shutil.rmtree(data)


def test_a_gdal_vrt_under_another_name_opens_nothing_in_a_job(workdir):
    """A VRT names other files inside the file, where the source checks do not look; GDAL
    recognises one by its content, whatever its name: jobs do not load GDAL's VRT drivers."""
    outside = Path(tempfile.mkdtemp(prefix="qfc-test-outside-"))
    outside.chmod(0o755)  # readable by anyone, the job's user included: only GDAL_SKIP stops it
    (outside / "secret.geojson").write_text('{"type": "FeatureCollection", "features": [{"type": "Feature",'
                                            ' "properties": {"secret": "TOPSECRET"}, "geometry": null}]}')
    (outside / "secret.geojson").chmod(0o644)
    project_dir, out_dir = workdir / "project", workdir / "out"
    out_dir.mkdir(parents=True)
    project_dir.mkdir()
    (project_dir / "data.dat").write_text(
        f"<OGRVRTDataSource><OGRVRTLayer name='secret'><SrcDataSource>{outside}/secret.geojson"
        "</SrcDataSource><SrcLayer>secret</SrcLayer></OGRVRTLayer></OGRVRTDataSource>")
    (project_dir / "p.qgs").write_text(
        '<qgis version="3.22.16"><projectlayers><maplayer type="vector" geometry="No geometry">'
        "<id>disguised_vrt_0001</id><datasource>./data.dat</datasource><layername>vrt</layername>"
        '<provider encoding="UTF-8">ogr</provider></maplayer></projectlayers></qgis>')
    try:
        result = _run({"project_dir": str(project_dir), "project_file": "p.qgs", "out_dir": str(out_dir)},
                      workdir)
    finally:
        shutil.rmtree(outside)
    assert result.error is None, result.output
    details = result.feedback["outputs"]["project_details"]["project_details"]
    layer = details["layers_by_id"]["disguised_vrt_0001"]
    assert layer["is_valid"] is False and layer["fields"] == []
    assert "TOPSECRET" not in json.dumps(result.feedback) + result.output


def test_a_childs_question_is_answered_once(tmp_path):
    """What a child asks costs the worker work (a download of shared datasets): asked again, it
    gets an error, not the work done twice."""
    read_end, write_end = os.pipe()
    echo = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # the child's stdin
    child = isolation._Child(echo, tmp_path, os.fdopen(read_end, "rb"))
    asked = []
    answers = {"localized": lambda payload: asked.append(payload) or "/the/folder"}
    os.write(write_end, b'{"ask": "localized", "payload": ["a.gpkg"]}\n'
                        b'{"ask": "localized", "payload": ["b.gpkg"]}\n{"ask": "unknown"}\n')
    for _ in range(3):
        isolation._answer(child, answers)
    echo.stdin.close()
    replies = [json.loads(line) for line in echo.stdout.read().splitlines()]
    echo.wait()
    os.close(write_end)
    assert asked == [["a.gpkg"]]
    assert replies[0] == {"answer": "/the/folder"}
    assert "asked already" in replies[1]["error"] and "unknown" in replies[2]["error"]


def test_a_report_larger_than_the_worker_reads_fails_the_job(project, workdir, monkeypatch):
    monkeypatch.setattr(isolation, "MAX_REPORT_BYTES", 1000)
    result = _run(project, workdir)
    assert result.failure == "The job's report was unreadable."


def test_two_workers_never_share_a_uid_whatever_their_tmpdir(tmp_path):
    """Workers on one machine claim their uids from one place, even when their TMPDIRs differ
    (a test's stack has one of its own)."""
    code = ("from job_containers import sandbox; import sys, time;"
            " print(sandbox.identity().uid, flush=True); sys.stdin.readline()")
    workers = []
    try:
        for name in ("one", "two"):
            folder = Path(tempfile.mkdtemp(prefix=f"qfc-test-tmp-{name}-"))
            folder.chmod(0o711)
            process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, env={**os.environ, "TMPDIR": str(folder)})
            workers.append((process, folder))
        uids = [process.stdout.readline().strip() for process, _ in workers]
    finally:
        for process, folder in workers:
            process.communicate(b"\n", timeout=60)
            shutil.rmtree(folder)
    if sandbox.identity().separate:
        assert uids[0] != uids[1] and b"None" not in uids
    else:
        assert uids == [b"None", b"None"]
