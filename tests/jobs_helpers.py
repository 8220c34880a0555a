"""Helpers for tests that run jobs through the API and the real worker (in this process, so it
sees the same in-process moto; each job's QGIS core still runs in a child process)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from tests.files_helpers import upload


def upload_tree(client, project_id: str, directory: Path, names: list[str] | None = None) -> None:
    """Upload files of `directory` (all of them, or `names`), data files first and the QGIS
    project last, as a user syncing a project does."""
    if names:
        paths = [directory / name for name in names]
    else:
        paths = sorted(path for path in directory.rglob("*") if path.is_file())
    paths.sort(key=lambda path: path.suffix in (".qgs", ".qgz"))
    for path in paths:
        reply = upload(client, project_id, path.relative_to(directory).as_posix(), path.read_bytes())
        assert reply.status == 201, reply.content


def run_jobs(rounds: int = 20) -> int:
    """Let a worker take every message waiting in the queue (and those the jobs add); how many
    messages it handled."""
    from chalicelib.adapters import job_queue as queue
    from job_containers.worker import Worker

    worker = Worker()
    handled = 0
    for _ in range(rounds):
        messages = queue.receive(0)
        if not messages:
            break
        for message in messages:
            worker.handle(message)
            handled += 1
    return handled


def fetch(client, path: str) -> bytes:
    """The bytes behind a download endpoint (it redirects to a presigned URL)."""
    reply = client.get(path)
    assert reply.status == 302, reply.content
    response = requests.get(reply.headers["Location"], timeout=30)
    assert response.status_code == 200
    return response.content


@contextmanager
def an_hour_later() -> Iterator[None]:
    """The jobs' clock moved an hour on: every lease taken until now has lapsed, as a dead worker's
    does (rather than a test sleeping until a short lease runs out)."""
    from chalicelib.models.base import utcnow
    from chalicelib.services import jobs

    later = utcnow() + timedelta(hours=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jobs, "utcnow", lambda: later)
        yield
