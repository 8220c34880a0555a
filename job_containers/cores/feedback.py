"""The feedback of a job: the JSON QFieldCloud's worker reports (feedback_version "2.0").

A workflow is an ordered list of declared steps. Each step ends in stage 2 (completed), 1 (started
and failed) or stays 0 (never started, because an earlier step failed). A completed step's named
return values go to `steps[].returns`, and its declared outputs to `outputs[<step id>]`, which is
what the API reads (`outputs.project_details.project_details`, `outputs.apply_deltas.delta_feedback`,
`outputs.qgis_layers_data.layers_by_id`). On the first failure the workflow records `error`,
`error_type`, `error_class` and `error_stack`, and the remaining steps are skipped.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

FEEDBACK_VERSION = "2.0"
NOT_STARTED, FAILED, COMPLETED = 0, 1, 2


class JobError(Exception):
    """A failure the job can explain to the user; `error_type` is QFieldCloud's category."""

    error_type = "UNKNOWN"


class InvalidProjectFile(JobError):
    error_type = "INVALID_PROJECT_FILE"


class UnableToContinue(JobError):
    error_type = "UNABLE_TO_CONTINUE"


def error_type_of(error: BaseException) -> str:
    if isinstance(error, JobError):
        return error.error_type
    if isinstance(error, FileNotFoundError):
        return "FILE_NOT_FOUND"
    return "UNKNOWN"


def _json_safe(value: Any) -> Any:
    """Values JSON can carry as they are; anything else as QFieldCloud marks it."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return f"<non-serializable: {type(value).__name__}>"


@dataclass
class Step:
    id: str
    name: str
    outputs: tuple[str, ...] = ()
    stage: int = NOT_STARTED
    returns: dict[str, Any] = field(default_factory=dict)


class Workflow:
    """Runs declared steps in order and assembles the feedback.

        workflow = Workflow("process_projectfile", "Process QGIS project file", [
            Step("start_qgis_app", "Start QGIS Application"),
            Step("project_details", "Project details", outputs=("project_details",)),
        ])
        with workflow.step("start_qgis_app") as returns:
            returns["qgis_version"] = "3.22.16"
        ...
        feedback = workflow.feedback()

    A step whose body raises is marked failed and the exception is recorded; `step` then raises
    `StopWorkflow`, which `run` (or the caller) catches: later steps stay not started.
    """

    def __init__(self, workflow_id: str, name: str, steps: list[Step], version: str = "2.0"):
        self.id, self.name, self.version = workflow_id, name, version
        self.steps = {step.id: step for step in steps}
        self.error: BaseException | None = None
        self.error_stack: str | None = None

    @contextmanager
    def step(self, step_id: str) -> Iterator[dict[str, Any]]:
        step = self.steps[step_id]
        if self.error is not None:
            raise StopWorkflow()
        step.stage = FAILED
        try:
            yield step.returns
        except StopWorkflow:
            raise
        except BaseException as error:  # recorded, never propagated: the job reports it
            self.error = error
            self.error_stack = traceback.format_exc()
            raise StopWorkflow() from None
        step.stage = COMPLETED

    def feedback(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "feedback_version": FEEDBACK_VERSION,
            "workflow_id": self.id,
            "workflow_name": self.name,
            "workflow_version": self.version,
            "steps": [
                {"id": s.id, "name": s.name, "stage": s.stage, "returns": _json_safe(s.returns)}
                for s in self.steps.values()
            ],
            "outputs": {
                s.id: {name: _json_safe(s.returns.get(name)) for name in s.outputs}
                for s in self.steps.values()
                if s.stage == COMPLETED
            },
        }
        if self.error is not None:
            body.update(
                error=str(self.error) or type(self.error).__name__,
                error_type=error_type_of(self.error),
                error_class=type(self.error).__name__,
                error_stack=self.error_stack,
            )
        return body


class StopWorkflow(Exception):
    """Raised out of a failed (or skipped) step; the workflow already holds the error."""
