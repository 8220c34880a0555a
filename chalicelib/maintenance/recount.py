"""Sets the list counters (`Project.file_count`, `ListCount`) and the jobs' `project_and_type` from
what is stored, for data written before they existed. An administration task, not a request
path: it reads every project (a Scan) and each project's lists. Run it once after upgrading, while
nothing writes (`python -m chalicelib.maintenance.admin recount`; the local stack does it by
itself)."""

from __future__ import annotations

from collections import Counter

from chalicelib.maintenance.upgrades import every_project
from chalicelib.models import Delta, Job, ListCount, Project, ProjectFile
from chalicelib.models.counts import count_id
from chalicelib.models.jobs import project_and_type


def _count_files(project: Project) -> int:
    return ProjectFile.count(project.id)


def _count_jobs(project: Project) -> Counter:
    counts: Counter = Counter()
    for job in Job.by_project.query(project.id):
        counts[count_id("jobs", project.id)] += 1
        counts[count_id("jobs", project.id, job.type)] += 1
        if job.project_and_type is None:
            job.update(actions=[Job.project_and_type.set(project_and_type(project.id, job.type))])
    return counts


def _count_deltas(project: Project) -> Counter:
    counts: Counter = Counter()
    for delta in Delta.in_order.query(project.id, attributes_to_get=["project_id", "id", "deltafile_id"]):
        counts[count_id("deltas", project.id)] += 1
        counts[count_id("deltafile", project.id, delta.deltafile_id)] += 1
    return counts


def recount_project(project: Project) -> None:
    project.update(actions=[Project.file_count.set(_count_files(project))])
    with ListCount.batch_write() as batch:
        for list_id, count in (_count_jobs(project) + _count_deltas(project)).items():
            batch.save(ListCount(list_id, count=count))


def recount_all() -> int:
    """Recount every project's lists; how many projects there were."""
    return every_project(recount_project)
