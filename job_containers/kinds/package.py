"""package, as the worker runs it: the offline copy of a project that QField downloads. Its files
are stored once, under the job's own prefix (immutable per job), and the project serves the
package of the last job that succeeded from the transaction that completes that job on: a newer
job that failed never hides the last good package (unlike QFieldCloud, which serves the newest
completed job, failed or not; docs/jobs.md)."""

from __future__ import annotations

from chalicelib.adapters import storage
from chalicelib.models import Job, Project
from chalicelib.models.base import Transaction
from chalicelib.models.jobs import JobStatus, PackageFile
from chalicelib.models.projects import is_live
from chalicelib.services import files, jobs
from job_containers import sandbox
from job_containers.workspace import Workspace, download_project, save_report, shared_datasets


def run(job: Job, project: Project, workspace: Workspace) -> None:
    download_project(project, workspace.project_dir)
    result = workspace.run_core(workspace.project_arguments(project),
                                {"localized": shared_datasets(project, workspace)})
    save_report(job, result)
    if result.error is not None:
        jobs.complete(job, JobStatus.FAILED, error=result.error)
        return
    stored = []
    for path in sandbox.regular_files(workspace.out_dir):
        name = path.relative_to(workspace.out_dir).as_posix()
        sums = workspace.checksums(path)
        with sandbox.open_regular(path, workspace.root) as content:
            storage.put_object(storage.package_key(project.id, job.id, name), content,
                               files.content_type_for(name))
        stored.append(PackageFile(name=name, size=sums.size, md5sum=sums.md5sum, sha256=sums.sha256))
    complete(job, stored)


def complete(job: Job, package_files: list[PackageFile]) -> bool:
    """Complete a package job that made `package_files` (stored already): the project serves it
    from now on. `data_last_packaged_at` is when the job started: data changed after that is not
    in the package."""

    def serve(tx: Transaction) -> None:
        tx.update(Project(job.project_id),
                  actions=[Project.package_job_id.set(job.id),
                           Project.data_last_packaged_at.set(job.started_at)],
                  condition=is_live())

    return jobs.complete(job, JobStatus.FINISHED, extra=[Job.package_files.set(package_files)], also=serve)
