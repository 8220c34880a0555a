"""Running one claimed job: the project's files from S3 into a fresh directory, the QGIS core in
a child process, and what it produced back through the same services the API uses.

The worker holds the project's lease while this runs; `should_stop` tells when it lost it.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from chalicelib import checksums, deltas, files, jobs, packages, processing, projects, storage, thumbnails
from chalicelib.auth import Caller
from chalicelib.config import settings
from chalicelib.errors import Conflict, ObjectNotFound
from chalicelib.file_rules import is_attachment
from chalicelib.models import Job, Project, ProjectFile, User
from chalicelib.models.jobs import JobStatus, JobType, PackageFile
from chalicelib.observability import logger

from . import isolation

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


LOCALIZED_SOURCE = re.compile(r'localized:([^|"<>&]+)')


def localized_datasets(project: Project, project_file: Path, directory: Path) -> Path | None:
    """The files the project's `localized:` layers name, from the owner's shared datasets
    project (with their sidecars: a shapefile is several files), in `directory`; None when the
    project names none or has no shared datasets project. A missing file shows as an invalid
    layer in the job's report."""
    if project_file.suffix.lower() == ".qgz":
        with zipfile.ZipFile(project_file) as archive:
            text = b"".join(archive.read(name) for name in archive.namelist()
                            if name.lower().endswith(".qgs")).decode("utf-8", "replace")
    else:
        text = project_file.read_text("utf-8", "replace")
    stems = {_stem(unquote(path).strip()) for path in LOCALIZED_SOURCE.findall(text)}
    shared = projects.shared_datasets_of(project) if stems else None
    if shared is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    download_project(shared, directory, wanted=lambda name: _stem(name) in stems)
    return directory


def _stem(name: str) -> str:
    return PurePosixPath(name).with_suffix("").as_posix()


def _checksums(path: Path) -> checksums.Checksums:
    with path.open("rb") as stream:
        return checksums.of_stream(stream)


def _run(core: str, arguments: dict, workspace: Workspace,
         should_stop: Callable[[], bool]) -> isolation.ChildResult:
    workspace.out_dir.mkdir(parents=True, exist_ok=True)
    result = isolation.run_core(core, arguments, workspace.root, timeout_seconds=settings.job_timeout_seconds,
                                memory_mb=settings.job_memory_mb, should_stop=should_stop)
    logger.info("Job core ended", extra={"core": core, "seconds": round(result.seconds, 2),
                                         "peak_rss_mb": round(result.peak_rss_mb), "error": result.error})
    return result


def _report(job: Job, result: isolation.ChildResult) -> None:
    output = result.output if not result.failure else f"{result.output}\n{result.failure}\n"
    jobs.save_report(job, result.feedback, output)


def _project_arguments(project: Project, workspace: Workspace) -> dict:
    """What process_projectfile and package read: the project, and its shared datasets."""
    localized = localized_datasets(project, workspace.project_dir / project.the_qgis_file_name,
                                   workspace.root / "shared_datasets")
    return {"project_dir": str(workspace.project_dir), "project_file": project.the_qgis_file_name,
            "out_dir": str(workspace.out_dir), "localized_dir": str(localized) if localized else None}


def process_projectfile(job: Job, project: Project, workspace: Workspace,
                        should_stop: Callable[[], bool]) -> None:
    download_project(project, workspace.project_dir)
    result = _run("process_projectfile", _project_arguments(project, workspace), workspace, should_stop)
    details = None
    if result.error is None:
        details = ((result.feedback or {}).get("outputs", {}).get("project_details") or {}).get(
            "project_details")
        thumbnail = workspace.out_dir / "thumbnail.png"
        if thumbnail.exists():
            with thumbnail.open("rb") as image:
                thumbnails.store(project, image, thumbnail.stat().st_size)
    _report(job, result)
    processing.complete_processing(job, details, result.error)


def package(job: Job, project: Project, workspace: Workspace, should_stop: Callable[[], bool]) -> None:
    download_project(project, workspace.project_dir)
    result = _run("package", _project_arguments(project, workspace), workspace, should_stop)
    _report(job, result)
    if result.error is not None:
        jobs.complete(job, JobStatus.FAILED, error=result.error)
        return
    stored = []
    for path in sorted(p for p in workspace.out_dir.rglob("*") if p.is_file()):
        name = path.relative_to(workspace.out_dir).as_posix()
        sums = _checksums(path)
        with path.open("rb") as content:
            storage.put_object(storage.package_key(project.id, job.id, name), content,
                               files.content_type_for(name))
        stored.append(PackageFile(name=name, size=sums.size, md5sum=sums.md5sum, sha256=sums.sha256))
    packages.complete(job, stored)


def _edited(downloaded: dict[str, ProjectFile], directory: Path) -> list[tuple[str, Path]]:
    """The files whose bytes the job changed."""
    changed = []
    for name, item in downloaded.items():
        path = _local_path(directory, name)
        if path.exists() and _checksums(path).sha256 != item.latest.sha256:
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
    result = _run("apply_deltas", {
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
    for name, path in _edited(downloaded, workspace.project_dir):
        sums = _checksums(path)
        with path.open("rb") as content:
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
        with tempfile.TemporaryDirectory(prefix=f"qfc-job-{job.id}-") as root:
            try:
                RUNNERS[JobType(job.type)](job, project, Workspace(Path(root)), should_stop)
            except Exception as error:
                logger.exception("The job failed unexpectedly", extra={"job_id": job.id})
                reason = f"The job failed unexpectedly: {type(error).__name__}: {error}"
                if jobs.fail(job, reason) and job.type == JobType.DELTA_APPLY:
                    deltas.put_back(job)
    after(job)


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
