"""The process_projectfile job core: check an uploaded QGIS project, describe it and its layers
(`outputs.project_details.project_details`) and render its thumbnail (`out_dir/thumbnail.png`).

Invalid layers do not fail the job: each is reported with its reason. Downloading the project
and uploading the results is the runner's business.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from job_containers.cores import qgis_job
from job_containers.cores.feedback import Step, Workflow

THUMBNAIL_NAME = "thumbnail.png"


def process_projectfile(project_dir: Path, project_file: str, out_dir: Path,
                        localized_dir: Path | None = None,
                        fetch_localized: qgis_job.FetchLocalized | None = None) -> dict[str, Any]:
    workflow = Workflow("process_projectfile", "Process Projectfile", [
        Step("start_qgis_app", "Start QGIS Application"),
        Step("project_validity_check", "Project Validity Check"),
        Step("opening_check", "Opening Check"),
        Step("project_details", "Project Details", outputs=("project_details",)),
        Step("generate_thumbnail_image", "Generate Thumbnail Image"),
    ])
    steps = partial(_steps, workflow, Path(project_dir) / project_file, Path(out_dir), fetch_localized)
    return qgis_job.run(workflow, steps, localized_dir)


def _steps(workflow: Workflow, project_path: Path, out_dir: Path,
           fetch_localized: qgis_job.FetchLocalized | None) -> None:
    # Imported here, not at the top: without QGIS the job reports a failed start, it does not raise.
    from job_containers.cores import project_file, qgis_project, thumbnail
    from job_containers.cores.project_details import project_details

    with workflow.step("project_validity_check"):
        head = project_file.check_project_file(project_path)
        qgis_job.use_shared_datasets(head, fetch_localized)
    with workflow.step("opening_check"):
        opened = qgis_project.open_project(project_path, head=head)
    with workflow.step("project_details") as returns:
        returns["project_details"] = project_details(opened, project_file.qgis_version(head.attributes))
    with workflow.step("generate_thumbnail_image") as returns:
        out_dir.mkdir(parents=True, exist_ok=True)
        rendered = thumbnail.render_thumbnail(opened, out_dir / THUMBNAIL_NAME)
        returns["thumbnail_filename"] = THUMBNAIL_NAME if rendered else None

