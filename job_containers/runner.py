"""Running one claimed job through its kind (job_containers/kinds): a fresh folder, the kind's
`run` (the project's files in, its QGIS core in a child process, its result recorded through the
same services the API uses), and what a job that fails, is abandoned or is done leaves to do.

The worker holds the project's lease while a job runs; `should_stop` tells when it lost it.
"""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.adapters import storage
from chalicelib.errors import ObjectNotFound
from chalicelib.models import Job, Project
from chalicelib.models.jobs import JobStatus
from chalicelib.observability import logger
from chalicelib.services import jobs, projects
from job_containers import sandbox
from job_containers.kinds import kind_of
from job_containers.workspace import Workspace


def run(job: Job, should_stop: Callable[[], bool]) -> None:
    """Run a claimed (started) job to its completion. Anything unexpected fails it. If its
    project was deleted meanwhile, what the job stored goes: the project's purge may have
    passed already (each object stored before the project is found deleted here was stored
    before the purge began, which deletes it)."""
    with storage.writes_recorded() as written:
        _run(job, should_stop)
    if written and _project(job.project_id) is None:
        for key, version_id in written:
            storage.delete_version(key, version_id)


def _run(job: Job, should_stop: Callable[[], bool]) -> None:
    project = _project(job.project_id)
    if project is None or not project.the_qgis_file_name:
        jobs.fail(job, "The project was deleted." if project is None
                  else "The project does not contain a QGIS project file.")
    else:
        kind = kind_of(job)
        with sandbox.job_folder(job.id) as root:
            try:
                kind.run(job, project, Workspace(root, kind.core, kind.time_limit(), should_stop))
            except Exception as error:
                if isinstance(error, ObjectNotFound) and _project(job.project_id) is None:
                    # Its project was deleted while it ran: an ordinary end, nobody's fault.
                    fail(job, "The project was deleted while the job ran.")
                else:
                    logger.exception("The job failed unexpectedly", extra={"job_id": job.id})
                    # Without the worker's own folders, which are none of the user's business.
                    reason = f"The job failed unexpectedly: {type(error).__name__}: {error}"
                    fail(job, reason.replace(f"{root}/", ""))
    after(job)


def fail(job: Job, reason: str, *, final: bool = False) -> None:
    """Fail a job that did not complete itself, and let its kind put right what it leaves behind
    (`final`: its message kept failing, nothing of it is tried again)."""
    if not jobs.fail(job, reason):
        return
    on_failure = kind_of(job).on_failure
    if on_failure is not None:
        on_failure(job, final)


def abandon(job: Job) -> None:
    """A job whose worker stopped: a started one fails and gives back what it took; one that
    had completed is recorded to the end."""
    if job.status == JobStatus.STARTED:
        fail(job, "The worker running this job stopped before it finished (it was killed or lost its "
                  "connection); nothing the job did was kept.")
    elif (on_abandoned := kind_of(job).on_abandoned) is not None:
        on_abandoned(job)
    after(job)


def after(job: Job) -> None:
    """A done job leaves the active ones; then what its kind does next."""
    jobs.retire(job)
    follow_up = kind_of(job).follow_up
    if follow_up is not None and (project := _project(job.project_id)) is not None:
        follow_up(job, project)


def _project(project_id: str) -> Project | None:
    """The project, unless it is gone or being deleted."""
    try:
        return projects.get_project(project_id)
    except ObjectNotFound:
        return None
