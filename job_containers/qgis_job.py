"""The life of a QGIS job core: QGIS starts as the workflow's first step (`start_qgis_app`), the
core's own steps follow, and whatever happens the loaded project is cleared and the feedback
returned. Nothing is raised: a failure is the feedback's `error`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from job_containers import qgis_app
from job_containers.feedback import StopWorkflow, Workflow


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
