"""Every job type, declared once: what the worker and the runner know of a kind of job comes
from its `JobKind` here, never from comparing `job.type` with a name.

A new job type is a module of this folder (its `run` and its hooks), a core in
job_containers/cores/, a `JobType` (models/jobs.py) and one entry in `KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.config import settings
from chalicelib.models import Job, Project
from chalicelib.models.jobs import JobType
from job_containers.kinds import delta_apply, package, process_projectfile
from job_containers.workspace import Workspace


@dataclass(frozen=True)
class JobKind:
    """One job type, as the worker runs it.

    - `core`: the PyQGIS core its QGIS child runs (the function `core` of job_containers/cores/
      <core>.py), for at most `time_limit()` seconds.
    - `run`: how it runs, from the job's folder to its completion: the inputs it brings into the
      folder, the core's arguments, and how its result is recorded in the transaction that
      completes the job. It completes the job, or raises (the runner then fails it).
    - `on_failure(job, final)`: what to put right when the job failed without completing itself
      (an error, its worker died, its message kept failing: `final`, nothing is tried again).
    - `on_abandoned(job)`: what to finish for a job its worker completed but stopped before
      recording everything (the sweeper's finding).
    - `follow_up(job, project)`: what follows it once it is done and retired (its project still
      there).

    A hook a kind leaves out (None) has nothing to do.
    """

    core: str
    time_limit: Callable[[], int]
    run: Callable[[Job, Project, Workspace], None]
    on_failure: Callable[[Job, bool], None] | None = None
    on_abandoned: Callable[[Job], None] | None = None
    follow_up: Callable[[Job, Project], None] | None = None


KINDS: dict[JobType, JobKind] = {
    JobType.PROCESS_PROJECTFILE: JobKind(
        core="process_projectfile",
        # It only reads a project: less time than a package or deltas.
        time_limit=lambda: settings.process_projectfile_timeout_seconds,
        run=process_projectfile.run,
        on_failure=process_projectfile.mark_failed,
    ),
    JobType.PACKAGE: JobKind(
        core="package",
        time_limit=lambda: settings.job_timeout_seconds,
        run=package.run,
    ),
    JobType.DELTA_APPLY: JobKind(
        core="apply_deltas",
        time_limit=lambda: settings.job_timeout_seconds,
        run=delta_apply.run,
        on_failure=delta_apply.on_failure,
        on_abandoned=delta_apply.on_abandoned,
        follow_up=delta_apply.apply_what_came_meanwhile,
    ),
}


def kind_of(job: Job) -> JobKind:
    return KINDS[JobType(job.type)]
