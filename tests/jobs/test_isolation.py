"""A job core runs in a child process of its own: its time, memory and a lost lease stop it with a
readable reason, a failing process is reported in words, the worker's next child is started
ahead (QGIS already loaded) and is used once, and no child leaves files behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from job_containers import isolation
from tests import shared_data

LIMITS = {"timeout_seconds": 120, "memory_mb": 3000}


@pytest.fixture
def project(tmp_path: Path) -> dict:
    """process_projectfile's arguments for a copy of the app's self-contained project."""
    project_dir, out_dir = tmp_path / "project", tmp_path / "out"
    project_dir.mkdir()
    out_dir.mkdir()
    shutil.copyfile(shared_data.testdata() / "app" / "self_contained.qgs", project_dir / "project.qgs")
    return {"project_dir": str(project_dir), "project_file": "project.qgs", "out_dir": str(out_dir),
            "localized_dir": None}


@pytest.fixture
def children_folders():
    """The child folders that exist now (other test runs may be going on), to compare with."""
    return lambda: set(Path(tempfile.gettempdir()).glob("qfc-child-*"))


@pytest.fixture
def prepared_child():
    isolation.prepare_a_child()
    yield
    isolation._discard_ready()


def _run(project: dict, workdir: Path, **limits):
    workdir.mkdir(exist_ok=True)
    return isolation.run_core("process_projectfile", project, workdir, **{**LIMITS, **limits})


def test_a_core_runs_and_its_folder_is_removed(project, tmp_path, children_folders):
    before = children_folders()
    result = _run(project, tmp_path)
    assert result.error is None, result.output
    assert result.feedback["outputs"]["project_details"]["project_details"]["layers_by_id"]
    assert "[job] process_projectfile: done" in result.output
    assert children_folders() == before


@pytest.mark.parametrize(("limits", "reason"), [
    ({"timeout_seconds": 0.2}, "The job took longer than 0.2 s and was stopped."),
    ({"memory_mb": 20}, "The job used more than 20 MB of memory and was stopped."),
    ({"should_stop": lambda: True}, "The job was stopped: its worker lost its hold on the project."),
])
def test_limits_stop_the_child_with_a_reason(project, tmp_path, children_folders, limits, reason):
    before = children_folders()
    result = _run(project, tmp_path, **limits)
    assert result.failure == reason
    assert result.feedback is None
    assert children_folders() == before


def test_a_child_that_fails_is_reported_in_words(tmp_path):
    result = isolation.run_core("no_such_core", {}, tmp_path, **LIMITS)
    assert result.failure == "The job process exited with code 1."
    assert "KeyError: 'no_such_core'" in result.output  # its traceback is in the job's log


def test_a_prepared_child_runs_the_next_job_only(project, tmp_path, prepared_child):
    ready = isolation._ready
    assert ready is not None and ready.process.poll() is None
    first = _run(project, tmp_path / "one")
    assert first.error is None, first.output
    assert ready.process.poll() is not None  # it ran that job and ended
    assert not ready.folder.exists()
    assert isolation._ready is None  # the next one is the worker's to prepare, between jobs
    second = _run(project, tmp_path / "two")  # started on demand
    assert second.error is None, second.output


def test_a_killed_workers_child_folder_is_removed_when_a_worker_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    left, ours = tmp_path / f"qfc-child-{dead.pid}-abc", tmp_path / f"qfc-child-{os.getpid()}-abc"
    for folder in (left, ours):
        (folder / "profile").mkdir(parents=True)
    isolation.remove_folders_of_killed_workers()
    assert not left.exists() and ours.exists()


def test_a_prepared_child_that_died_is_replaced(project, tmp_path, prepared_child):
    isolation._ready.process.kill()
    isolation._ready.process.wait()
    result = _run(project, tmp_path)
    assert result.error is None, result.output
