"""What every job kind's `run` works with: the job's folder, the project's files brought into it,
its core run there in a QGIS child, and the job's report saved.

Only this side holds credentials: it moves the job's own project's files (and the owner's shared
datasets the child asks for) between S3 and the job's folder, and reads what the child wrote
there as files it made, never through a link (sandbox.open_regular).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from chalicelib.adapters import storage
from chalicelib.config import settings
from chalicelib.models import Job, Project, ProjectFile
from chalicelib.observability import logger
from chalicelib.rules import checksums, job_hosts
from chalicelib.rules.file_rules import is_attachment
from chalicelib.services import files, jobs, projects
from job_containers import isolation, sandbox


@dataclass
class Workspace:
    """A claimed job's folder, and the way to run its kind's core there: `core` (a core of
    job_containers/cores) for at most `time_limit` seconds, stopped early once `should_stop`
    says so (the worker lost the project's lease)."""

    root: Path
    core: str
    time_limit: int
    should_stop: Callable[[], bool]

    @property
    def project_dir(self) -> Path:
        return self.root / "project"

    @property
    def out_dir(self) -> Path:
        return self.root / "out"

    def project_arguments(self, project: Project) -> dict[str, Any]:
        """What process_projectfile and package read: the project (its shared datasets are asked
        for by the child, which alone reads the project file)."""
        return {"project_dir": str(self.project_dir), "project_file": project.the_qgis_file_name,
                "out_dir": str(self.out_dir)}

    def run_core(self, arguments: dict[str, Any],
                 answers: isolation.Answers | None = None) -> isolation.ChildResult:
        """Run the core with `arguments` in a QGIS child, which may ask what `answers` answer."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        sandbox.give(self.root)
        result = isolation.run_core(self.core, arguments, self.root, timeout_seconds=self.time_limit,
                                    memory_mb=settings.job_memory_mb, should_stop=self.should_stop,
                                    policy=host_policy(), answers=answers,
                                    network_seconds=settings.job_network_seconds)
        logger.info("Job core ended", extra={"core": self.core, "seconds": round(result.seconds, 2),
                                             "peak_rss_mb": round(result.peak_rss_mb), "error": result.error})
        return result

    def checksums(self, path: Path) -> checksums.Checksums:
        """The checksums of a file the child wrote (a regular file, reached through no link)."""
        with sandbox.open_regular(path, self.root) as stream:
            return checksums.of_stream(stream)


def save_report(job: Job, result: isolation.ChildResult) -> None:
    """The job's feedback and log, with why its child ended if it did not finish."""
    output = result.output if not result.failure else f"{result.output}\n{result.failure}\n"
    jobs.save_report(job, result.feedback, output)


def local_path(base: Path, name: str) -> Path:
    """Where the project file `name` goes under `base`; never outside it."""
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
        path = local_path(directory, item.name)
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
