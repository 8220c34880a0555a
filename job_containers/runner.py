"""Running one claimed job: the project's files from S3 into a fresh directory, the QGIS core in
a child process, and what it produced back through the same services the API uses.

The worker holds the project's lease while this runs; `should_stop` tells when it lost it. Only
this side holds credentials: it moves the job's own project's files (and the owner's shared
datasets the child asks for) between S3 and the job's folder, and reads what the child wrote
there as files it made, never through a link (sandbox.open_regular).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from chalicelib.adapters import storage
from chalicelib.config import settings
from chalicelib.errors import Conflict, ObjectNotFound
from chalicelib.models import Job, Project, ProjectFile, User
from chalicelib.models.jobs import JobStatus, JobType, PackageFile
from chalicelib.observability import logger
from chalicelib.rules import checksums, job_hosts
from chalicelib.rules.file_rules import is_attachment
from chalicelib.services import deltas, files, jobs, packages, processing, projects, thumbnails
from chalicelib.services.auth import Caller
from job_containers import isolation, sandbox

WORKER_CLIENT = "worker"
# SQLite companions a GeoPackage may leave beside it while open: never project files.
TRANSIENT_SUFFIXES = ("-wal", "-shm", "-journal")


@dataclass
class Workspace:
    root: Path

    @property
    def project_dir(self) -> Path:
        return self.root / "project"

    @property
    def out_dir(self) -> Path:
        return self.root / "out"


def _local_path(base: Path, name: str) -> Path:
    path = (base / PurePosixPath(name)).resolve()
    if not path.is_relative_to(base.resolve()):
        raise ValueError(f"unsafe file name {name!r}")
    return path


def download_project(project: Project, directory: Path,
                     wanted: Callable[[str], bool] | None = None) -> dict[str, ProjectFile]:
    """The latest version of every project file but attachments (QGIS needs none of them), or
    of those `wanted`."""
    downloaded = {}
    for item in files.list_files(project):
        if is_attachment(project, item.name) or (wanted is not None and not wanted(item.name)):
            continue
        path = _local_path(directory, item.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        storage.download_to(storage.file_key(project.id, item.name), str(path),
                            item.latest.s3_version_id)
        downloaded[item.name] = item
    return downloaded


def shared_datasets(project: Project, workspace: Workspace) -> Callable[[list[str]], str | None]:
    """The answer to a child asking for the shared datasets its `localized:` layers name (paths
    as the project spells them): those files of the owner's shared datasets project (with their
    sidecars: a shapefile is several files) in the job's folder, which is then the answer; None
    when the owner has no shared datasets project. A missing file shows as an invalid layer in
    the job's report."""

    def answer(paths: list[str]) -> str | None:
        stems = {_stem(unquote(path).strip()) for path in paths if isinstance(path, str)}
        shared = projects.shared_datasets_of(project) if stems else None
        if shared is None:
            return None
        directory = workspace.root / "shared_datasets"
        directory.mkdir(exist_ok=True)
        download_project(shared, directory, wanted=lambda name: _stem(name) in stems)
        sandbox.give(directory)
        return str(directory)

    return answer


def _stem(name: str) -> str:
    return PurePosixPath(name).with_suffix("").as_posix()


def _checksums(path: Path, root: Path) -> checksums.Checksums:
    with sandbox.open_regular(path, root) as stream:
        return checksums.of_stream(stream)


def host_policy() -> job_hosts.HostPolicy:
    """The hosts a job may reach: public ones, those the operator allows, never the AWS
    stand-in the local stack runs (its address is loopback, and allowing loopback for an
    on-premises service must not open it)."""
    refused = []
    for endpoint in {settings.aws_endpoint_url, settings.aws_public_endpoint_url} - {None}:
        parts = urlsplit(endpoint)
        if parts.hostname:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            refused += [(str(address), port) for address in job_hosts.resolve(parts.hostname)]
    return job_hosts.HostPolicy(settings.job_allowed_private_hosts, tuple(refused))


def time_limit(job_type: JobType) -> int:
    """process_projectfile only reads a project: it gets less time than a package or deltas."""
    if job_type == JobType.PROCESS_PROJECTFILE:
        return settings.process_projectfile_timeout_seconds
    return settings.job_timeout_seconds


def _run(job: Job, core: str, arguments: dict, workspace: Workspace, should_stop: Callable[[], bool],
         answers: isolation.Answers | None = None) -> isolation.ChildResult:
    workspace.out_dir.mkdir(parents=True, exist_ok=True)
    sandbox.give(workspace.root)
    result = isolation.run_core(core, arguments, workspace.root,
                                timeout_seconds=time_limit(JobType(job.type)),
                                memory_mb=settings.job_memory_mb, should_stop=should_stop,
                                policy=host_policy(), answers=answers,
                                network_seconds=settings.job_network_seconds)
    logger.info("Job core ended", extra={"core": core, "seconds": round(result.seconds, 2),
                                         "peak_rss_mb": round(result.peak_rss_mb), "error": result.error})
    return result


def _report(job: Job, result: isolation.ChildResult) -> None:
    output = result.output if not result.failure else f"{result.output}\n{result.failure}\n"
    jobs.save_report(job, result.feedback, output)


def _project_arguments(project: Project, workspace: Workspace) -> dict:
    """What process_projectfile and package read: the project (its shared datasets are asked
    for by the child, which alone reads the project file)."""
    return {"project_dir": str(workspace.project_dir), "project_file": project.the_qgis_file_name,
            "out_dir": str(workspace.out_dir)}


def process_projectfile(job: Job, project: Project, workspace: Workspace,
                        should_stop: Callable[[], bool]) -> None:
    download_project(project, workspace.project_dir)
    result = _run(job, "process_projectfile", _project_arguments(project, workspace), workspace, should_stop,
                  {"localized": shared_datasets(project, workspace)})
    details = None
    if result.error is None:
        details = ((result.feedback or {}).get("outputs", {}).get("project_details") or {}).get(
            "project_details")
        with contextlib.suppress(FileNotFoundError), \
                sandbox.open_regular(workspace.out_dir / "thumbnail.png", workspace.root) as image:
            thumbnails.store(project, image, os.fstat(image.fileno()).st_size)
    _report(job, result)
    processing.complete_processing(job, details, result.error)


def package(job: Job, project: Project, workspace: Workspace, should_stop: Callable[[], bool]) -> None:
    download_project(project, workspace.project_dir)
    result = _run(job, "package", _project_arguments(project, workspace), workspace, should_stop,
                  {"localized": shared_datasets(project, workspace)})
    _report(job, result)
    if result.error is not None:
        jobs.complete(job, JobStatus.FAILED, error=result.error)
        return
    stored = []
    for path in sandbox.regular_files(workspace.out_dir):
        name = path.relative_to(workspace.out_dir).as_posix()
        sums = _checksums(path, workspace.root)
        with sandbox.open_regular(path, workspace.root) as content:
            storage.put_object(storage.package_key(project.id, job.id, name), content,
                               files.content_type_for(name))
        stored.append(PackageFile(name=name, size=sums.size, md5sum=sums.md5sum, sha256=sums.sha256))
    packages.complete(job, stored)


def _edited(project: Project, downloaded: dict[str, ProjectFile],
            workspace: Workspace) -> list[tuple[str, Path]]:
    """The data files whose bytes the job changed (deltas edit data, never the QGIS project)."""
    changed = []
    for name, item in downloaded.items():
        if name == project.the_qgis_file_name:
            continue
        path = _local_path(workspace.project_dir, name)
        try:
            sums = _checksums(path, workspace.root)
        except FileNotFoundError:
            continue
        if sums.sha256 != item.latest.sha256:
            changed.append((name, path))
    return changed


def apply_deltas(job: Job, project: Project, workspace: Workspace,
                 should_stop: Callable[[], bool]) -> None:
    """Apply the project's pending deltas. The edited files and the job's completion are one
    transaction, so a delta's edit is kept exactly when its job finishes; its status follows."""
    batch = deltas.take(job)
    if not batch.deltas:
        jobs.save_report(job, None, "No pending deltas to apply.\n")
        jobs.complete(job, JobStatus.FINISHED)
        return
    downloaded = download_project(project, workspace.project_dir)
    result = _run(job, "apply_deltas", {
        "project_dir": str(workspace.project_dir), "project_file": project.the_qgis_file_name,
        "deltas": [delta.content for delta in batch.deltas], "client_pks": batch.client_pks,
        "overwrite_conflicts": bool(job.overwrite_conflicts)}, workspace, should_stop)
    _report(job, result)
    if result.error is not None:
        if jobs.complete(job, JobStatus.FAILED, error=result.error):
            deltas.record(job, None, batch.deltas)
        return
    caller = Caller(user=User.get(job.created_by_key), client_type=WORKER_CLIENT)
    edits = []
    for name, path in _edited(project, downloaded, workspace):
        sums = _checksums(path, workspace.root)
        with sandbox.open_regular(path, workspace.root) as content:
            version_id = storage.put_object(storage.file_key(project.id, name), content,
                                            files.content_type_for(name))
        edits.append(files.NewVersion(files.target_of(project, name), version_id, sums,
                                      based_on=downloaded[name]))

    def completion(tx) -> None:
        jobs.completion(tx, job, JobStatus.FINISHED)

    try:
        if edits:
            files.commit_edits(caller, project, edits, also=completion)
        elif not jobs.complete(job, JobStatus.FINISHED):
            return
    except Conflict as conflict:
        # Someone uploaded a new version of an edited file meanwhile: apply again on top of it.
        if jobs.complete(job, JobStatus.FAILED, error=conflict.message):
            deltas.put_back(job)
        return
    job.refresh(consistent_read=True)
    if job.status == JobStatus.FINISHED:
        deltas.record(job, result.feedback, batch.deltas)


RUNNERS = {
    JobType.PROCESS_PROJECTFILE: process_projectfile,
    JobType.PACKAGE: package,
    JobType.DELTA_APPLY: apply_deltas,
}


def run(job: Job, should_stop: Callable[[], bool]) -> None:
    """Run a claimed (started) job to its completion. Anything unexpected fails it."""
    project = _project(job.project_id)
    if project is None or not project.the_qgis_file_name:
        jobs.fail(job, "The project was deleted." if project is None
                  else "The project does not contain a QGIS project file.")
    else:
        with sandbox.job_folder(job.id) as root:
            try:
                RUNNERS[JobType(job.type)](job, project, Workspace(root), should_stop)
            except Exception as error:
                logger.exception("The job failed unexpectedly", extra={"job_id": job.id})
                # Without the worker's own folders, which are none of the user's business.
                reason = f"The job failed unexpectedly: {type(error).__name__}: {error}"
                fail(job, reason.replace(f"{root}/", ""))
    after(job)


def fail(job: Job, reason: str, *, retry_deltas: bool = True) -> None:
    """Fail a job that did not complete itself, and put right what its kind leaves behind: a
    delta_apply's deltas go back to pending (or end in error, unless `retry_deltas`), and a
    process_projectfile's project shows the failure as after a failed run."""
    if not jobs.fail(job, reason):
        return
    if job.type == JobType.DELTA_APPLY:
        if retry_deltas:
            deltas.put_back(job)
        else:
            deltas.record(job, None)
    elif job.type == JobType.PROCESS_PROJECTFILE:
        processing.mark_failed(job)


def after(job: Job) -> None:
    """A done job leaves the active ones; deltas that arrived meanwhile get a new job."""
    jobs.retire(job)
    project = _project(job.project_id)
    if job.type == JobType.DELTA_APPLY and project is not None and deltas.any_pending(project.id):
        caller = Caller(user=User.get(job.created_by_key), client_type=WORKER_CLIENT)
        jobs.trigger(caller, project, JobType.DELTA_APPLY)


def _project(project_id: str) -> Project | None:
    """The project, unless it is gone or being deleted."""
    try:
        return projects.get_project(project_id)
    except ObjectNotFound:
        return None
