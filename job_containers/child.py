"""The child process of one job: `python -m job_containers.child` loads QGIS and the cores, reads
the path of its request from stdin (it may be started before its job exists), runs the core the
request names and writes its feedback where the request says. It exits without tearing QGIS
down: QGIS 3.22 can crash at exit while Python still holds layers (reference jobs.md B.3)."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

# core name → (module, function); each takes keyword arguments and returns its feedback.
CORES = {
    "process_projectfile": ("job_containers.process_projectfile", "process_projectfile"),
    "package": ("job_containers.package", "package"),
    "apply_deltas": ("job_containers.apply_deltas", "apply_deltas"),
}
PATH_ARGUMENTS = ("project_dir", "out_dir", "localized_dir")


def main(request_path: str) -> None:
    request = json.loads(Path(request_path).read_text())
    module, function = CORES[request["core"]]
    arguments = {name: Path(value) if name in PATH_ARGUMENTS and value is not None else value
                 for name, value in request["arguments"].items()}
    feedback = getattr(importlib.import_module(module), function)(**arguments)
    Path(request["feedback"]).write_text(json.dumps(feedback))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def wait_for_request() -> None:
    from job_containers import qgis_app

    qgis_app.start()
    for module, _ in CORES.values():
        importlib.import_module(module)
    request_path = sys.stdin.readline().strip()
    if not request_path:  # the worker stopped before it had a job for this process
        os._exit(0)
    main(request_path)


if __name__ == "__main__":
    wait_for_request()
