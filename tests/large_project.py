"""A project grown large quickly: its files (with their versions), jobs and deltas written straight
into the tables with batch writes, with the counters the API keeps, instead of through thousands
of requests. The S3 objects are not written: lists, counts and costs do not read them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

START = datetime(2026, 1, 1, tzinfo=UTC)


def _versions(count: int, size: int, at: datetime) -> list:
    from chalicelib.models import FileVersion

    return [FileVersion(version_id=str(uuid.uuid4()), s3_version_id=uuid.uuid4().hex, size=size,
                        md5sum=uuid.uuid4().hex, sha256=uuid.uuid4().hex * 2,
                        uploaded_at=at + timedelta(seconds=v), uploaded_by="alice")
            for v in range(count)]


def add_files(project_id: str, count: int, versions: int = 10, size: int = 1000) -> None:
    """`count` files `data/f000000.csv`… of `versions` versions each."""
    from chalicelib.models import Project, ProjectFile

    with ProjectFile.batch_write() as batch:
        for number in range(count):
            at = START + timedelta(minutes=number)
            batch.save(ProjectFile(project_id, f"data/f{number:06d}.csv", uploaded_at=at, uploaded_by="alice",
                                   versions=_versions(versions, size, at), lock=1))
    counters = [Project.file_storage_bytes.add(count * versions * size)]
    if hasattr(Project, "file_count"):  # (benchmarks also run this against older versions)
        counters.append(Project.file_count.add(count))
    Project(project_id).update(actions=counters)


def add_jobs(project_id: str, count: int, job_type: str = "process_projectfile") -> None:
    """`count` finished jobs."""
    from chalicelib.models import Job, ListCount
    from chalicelib.models.counts import count_id
    from chalicelib.models.jobs import project_and_type

    with Job.batch_write() as batch:
        for number in range(count):
            at = START + timedelta(minutes=number)
            batch.save(Job(str(uuid.uuid4()), project_id=project_id, type=job_type, status="finished",
                           project_and_type=project_and_type(project_id, job_type), created_by="alice",
                           created_by_key="alice", created_at=at, updated_at=at, started_at=at,
                           finished_at=at))
    for list_id in (count_id("jobs", project_id), count_id("jobs", project_id, job_type)):
        ListCount(list_id).update(actions=[ListCount.count.add(count)])


def add_deltas(project_id: str, count: int, per_deltafile: int = 100) -> list[str]:
    """`count` applied deltas in deltafiles of `per_deltafile`; the deltafile ids."""
    from chalicelib.models import Delta, ListCount
    from chalicelib.models.counts import count_id

    deltafiles = [str(uuid.uuid4()) for _ in range(0, count, per_deltafile)]
    with Delta.batch_write() as batch:
        for number in range(count):
            deltafile = deltafiles[number // per_deltafile]
            at = START + timedelta(minutes=number)
            batch.save(Delta(project_id, str(uuid.uuid4()), seq=f"{at.isoformat()}#{deltafile}#{number:06d}",
                             deltafile_id=deltafile, client_id="c", created_by="alice", created_at=at,
                             updated_at=at, status="applied",
                             content_json=json.dumps({"method": "patch", "localLayerId": "points",
                                                      "localPk": str(number),
                                                      "new": {"attributes": {"int": number}}})))
    ListCount(count_id("deltas", project_id)).update(actions=[ListCount.count.add(count)])
    for number, deltafile in enumerate(deltafiles):
        in_file = min(per_deltafile, count - number * per_deltafile)
        ListCount(count_id("deltafile", project_id, deltafile)).update(actions=[ListCount.count.add(in_file)])
    return deltafiles
