"""Packages: the offline copies QField takes into the field, made by package jobs
(job_containers/kinds/package.py), which store their files under the job's own prefix.

The project remembers the last package job that succeeded: the latest package is that job's
files plus the project's attachments, taken from the project files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.adapters import storage
from chalicelib.errors import InvalidJob, ObjectNotFound
from chalicelib.models import Job, Project, ProjectFile
from chalicelib.models.jobs import PackageFile
from chalicelib.models.shapes import compact_json
from chalicelib.rules.file_rules import is_attachment
from chalicelib.services import files, jobs
from chalicelib.services.inputs import FileDownload

# QField reads the latest package on every sync, so its answer must stay far below the 6 MB a
# Lambda answers whatever the project: a package job reports each layer with its fields (about
# 3 KB a layer with 5 fields, 6.5 KB with 12).
MAX_LAYERS_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Package:
    job: Job
    package_files: list[PackageFile]
    attachments: list[ProjectFile]
    layers_json: str  # JSON text: the layers as reported, maybe without their fields (below)
    packaged_at: datetime | None
    data_last_updated_at: datetime | None


def _latest_job(project: Project) -> Job:
    job = jobs.find(project.package_job_id) if project.package_job_id else None
    if job is None:
        raise InvalidJob("This project has not been packaged yet: start a package job first.")
    return job


def _attachments(project: Project) -> list[ProjectFile]:
    return [item for item in files.list_files(project) if is_attachment(project, item.name)]


def latest(project: Project) -> Package:
    job = _latest_job(project)
    feedback = jobs.feedback_of(job) or {}
    layers = (feedback.get("outputs", {}).get("qgis_layers_data") or {}).get("layers_by_id")
    return Package(job, list(job.package_files or []), _attachments(project), _answered(layers),
                   project.data_last_packaged_at, project.data_last_updated_at)


def _answered(layers: Any) -> str:
    """The layers as the latest package's answer carries them, as JSON text (not rendered by the
    output models, which refuse values nested as deep as a project file may nest a layer's
    settings): whole up to MAX_LAYERS_BYTES, else without each layer's `fields`, the part that
    grows with the data model (the whole is in the package job's report)."""
    if not isinstance(layers, dict):
        return "null"
    text = compact_json(layers)
    if len(text) <= MAX_LAYERS_BYTES:
        return text
    return compact_json({layer_id: {key: value for key, value in layer.items() if key != "fields"}
                         if isinstance(layer, dict) else layer for layer_id, layer in layers.items()})


def serve(project: Project, name: str, request: FileDownload) -> files.Served:
    return files.serve(_stored_file(project, name), request)


def _stored_file(project: Project, name: str) -> files.StoredBytes:
    """A file of the latest package; names under an attachment folder are project files."""
    if is_attachment(project, name):
        item = files.get_file(project, name)
        return files.stored_version(item, item.latest)
    job = _latest_job(project)
    for package_file in job.package_files or []:
        if package_file.name == name:
            return files.StoredBytes(storage.package_key(project.id, job.id, name), None,
                                     int(package_file.size), package_file.md5sum, name)
    raise ObjectNotFound(f"The latest package has no file `{name}`.")
