"""The life of a QGIS job core: QGIS starts as the workflow's first step (`start_qgis_app`), the
core's own steps follow, and whatever happens the loaded project is cleared and the feedback
returned. Nothing is raised: a failure is the feedback's `error`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from job_containers.cores import qgis_app
from job_containers.cores.feedback import StopWorkflow, Workflow
from job_containers.cores.project_file import ProjectFileHead

# Asks the worker for the owner's shared datasets that `localized:` paths name; the folder it
# put them in, or None when the owner has no shared datasets project.
FetchLocalized = Callable[[list[str]], str | None]
LOCALIZED_PREFIXES = ("localized:", "file:localized:")


def run(workflow: Workflow, steps: Callable[[], None], localized_dir: Path | None = None) -> dict[str, Any]:
    """`localized_dir` holds the owner's shared datasets, where `localized:` layers are found."""
    try:
        with workflow.step("start_qgis_app") as returns:
            returns["qgis_version"] = qgis_app.start()
            if localized_dir is not None:
                qgis_app.use_localized_data(localized_dir)
        steps()
    except StopWorkflow:
        pass
    finally:
        qgis_app.clear_project()
    return workflow.feedback()


def use_shared_datasets(head: ProjectFileHead, fetch_localized: FetchLocalized | None) -> None:
    """Have the worker fetch the shared datasets the project's `localized:` layers name (it holds
    the credentials; this process does not) and let QGIS find them there."""
    paths = sorted({layer.datasource.split("localized:", 1)[1].split("|")[0]
                    for layer in head.layers if layer.datasource.startswith(LOCALIZED_PREFIXES)})
    if fetch_localized is None or not paths:
        return
    folder = fetch_localized(paths)
    if folder:
        qgis_app.use_localized_data(Path(folder))
