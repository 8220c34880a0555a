"""What a process_projectfile job found about a project, recorded with its completion."""

from __future__ import annotations

import contextlib
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.models import Job, Project
from chalicelib.models.base import Transaction
from chalicelib.models.jobs import JobStatus
from chalicelib.models.projects import is_live
from chalicelib.services import jobs


def _has_online_vector_data(layers: dict[str, Any]) -> bool:
    """A vector layer that no file holds (a database, a web service): it can only be taken
    offline by packaging again, so such a project always needs repackaging (reference §3.5)."""
    return any(
        layer.get("type_name") in ("Vector", "VectorLayer") and not layer.get("filename")
        and layer.get("provider_name") not in ("memory", "virtual")
        for layer in layers.values() if isinstance(layer, dict)
    )


def complete_processing(job: Job, details: dict[str, Any] | None, error: str | None) -> bool:
    """Complete a process_projectfile job: what it found about the project, or that it failed
    (the project is then `failed` until a run succeeds)."""
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


def mark_failed(job: Job) -> None:
    """A process_projectfile job that failed without completing itself (its worker died, its
    message kept failing): the project shows it as after a failed run."""
    with contextlib.suppress(UpdateError):  # the project was deleted meanwhile
        Project(job.project_id).update(actions=[Project.processing_failed.set(True)], condition=is_live())
