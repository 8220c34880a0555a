"""The package job core: the offline copy of a project QField downloads, written into `out_dir`
(see package_contents for what it holds).

Feedback outputs, as the API reads them: `qgis_layers_data.layers_by_id`, the layers of the
uploaded project (what `packages/<id>/latest/` lists), and `qfield_layer_data.layers_by_id`,
those of the packaged project as QGIS reads it back. Uploading the files is the runner's business.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from job_containers.cores import qgis_job
from job_containers.cores.feedback import Step, Workflow


def package(project_dir: Path, project_file: str, out_dir: Path, localized_dir: Path | None = None,
            fetch_localized: qgis_job.FetchLocalized | None = None) -> dict[str, Any]:
    workflow = Workflow("package_project", "Package Project", [
        Step("start_qgis_app", "Start QGIS Application"),
        Step("project_validity_check", "Project Validity Check"),
        Step("qgis_layers_data", "QGIS Layers Data", outputs=("layers_by_id",)),
        Step("package_project", "Package Project"),
        Step("qfield_layer_data", "Packaged Layers Data", outputs=("layers_by_id",)),
    ])
    steps = partial(_steps, workflow, Path(project_dir) / project_file, Path(out_dir), fetch_localized)
    return qgis_job.run(workflow, steps, localized_dir)


def _steps(workflow: Workflow, project_path: Path, out_dir: Path,
           fetch_localized: qgis_job.FetchLocalized | None) -> None:
    # Imported here, not at the top: without QGIS the job reports a failed start, it does not raise.
    from job_containers.cores import layers, package_contents, project_file, qgis_project

    with workflow.step("project_validity_check"):
        head = project_file.check_project_file(project_path)
        qgis_job.use_shared_datasets(head, fetch_localized)
    with workflow.step("qgis_layers_data") as returns:
        opened = qgis_project.open_project(project_path, head=head)
        returns["layers_by_id"] = layers.layers_by_id(opened)
    with workflow.step("package_project") as returns:
        packaged = package_contents.package_project(opened, out_dir)
        returns["qfield_project_file"] = packaged.name
        files = (path.relative_to(out_dir).as_posix() for path in out_dir.rglob("*") if path.is_file())
        returns["files"] = sorted(files)
    with workflow.step("qfield_layer_data") as returns:
        returns["layers_by_id"] = layers.layers_by_id(qgis_project.open_project(packaged))
