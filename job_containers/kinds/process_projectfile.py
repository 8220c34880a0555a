"""process_projectfile, as the worker runs it: every upload of a QGIS project file is checked,
described (its layers, their validity) and given a thumbnail; the project records what was found,
or that it failed, in the transaction that completes the job."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.models import Job, Project
from chalicelib.models.base import Transaction
from chalicelib.models.jobs import JobStatus
from chalicelib.models.projects import is_live
from chalicelib.services import jobs, thumbnails
from job_containers import sandbox
from job_containers.workspace import Workspace, download_project, save_report, shared_datasets


def run(job: Job, project: Project, workspace: Workspace) -> None:
    download_project(project, workspace.project_dir)
    result = workspace.run_core(workspace.project_arguments(project),
                                {"localized": shared_datasets(project, workspace)})
    details = None
    if result.error is None:
        details = ((result.feedback or {}).get("outputs", {}).get("project_details") or {}).get(
            "project_details")
        with contextlib.suppress(FileNotFoundError), \
                sandbox.open_regular(workspace.out_dir / "thumbnail.png", workspace.root) as image:
            thumbnails.store(project, image, os.fstat(image.fileno()).st_size)
    save_report(job, result)
    complete(job, details, result.error)


def _has_online_vector_data(layers: dict[str, Any]) -> bool:
    """A vector layer that no file holds (a database, a web service): it can only be taken
    offline by packaging again, so such a project always needs repackaging (as QFieldCloud
    decides; docs/jobs.md)."""
    return any(
        layer.get("type_name") in ("Vector", "VectorLayer") and not layer.get("filename")
        and layer.get("provider_name") not in ("memory", "virtual")
        for layer in layers.values() if isinstance(layer, dict)
    )


def complete(job: Job, details: dict[str, Any] | None, error: str | None) -> bool:
    """Complete the job with what it found about the project, or that it failed (the project
    is then `failed` until a run succeeds)."""
    if details is None:
        actions = [Project.processing_failed.set(True)]
    else:
        actions = [
            Project.processing_failed.set(False),
            Project.details_job_id.set(job.id),
            Project.attachment_dirs.set(list(details.get("attachment_dirs") or []) or None),
            Project.has_online_vector_data.set(_has_online_vector_data(details.get("layers_by_id") or {})),
            Project.qgis_version.set(details.get("qgis_version") or None),
        ]

    def record(tx: Transaction) -> None:
        tx.update(Project(job.project_id), actions=actions, condition=is_live())

    status = JobStatus.FINISHED if details is not None else JobStatus.FAILED
    return jobs.complete(job, status, error=error, also=record)


def mark_failed(job: Job, final: bool) -> None:
    """A job that failed without completing itself (an error, its worker died, its message kept
    failing): the project shows it as after a failed run."""
    with contextlib.suppress(UpdateError):  # the project was deleted meanwhile
        Project(job.project_id).update(actions=[Project.processing_failed.set(True)], condition=is_live())
