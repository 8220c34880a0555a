"""The child process of one job: `python -m job_containers.child` loads QGIS and the cores, gives up
root if it has it (sandbox.become), reads the path of its request from stdin (it may be started
before its job exists), runs the core the request names (the function `<core>` of
job_containers/cores/<core>.py, as the job's kind declares it) and writes its feedback where the
request says. It exits without tearing QGIS down: QGIS 3.22 can crash at exit while Python still
holds layers (docs/jobs.md).

What only the worker can do, the core asks for (`ask_worker`): one JSON line on the pipe the
worker gave it (`--ask-fd`), answered with one JSON line on stdin.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

CORES_PACKAGE = "job_containers.cores"
PATH_ARGUMENTS = ("project_dir", "out_dir", "localized_dir")
# Questions a core may ask, and the keyword argument through which it gets the asking function.
QUESTIONS = {"localized": "fetch_localized"}


class WorkerChannel:
    def __init__(self, fd: int):
        self.questions = os.fdopen(fd, "w")

    def ask(self, question: str, payload: Any) -> Any:
        """The worker's answer to `question`; raises RuntimeError with the worker's reason."""
        self.questions.write(json.dumps({"ask": question, "payload": payload}) + "\n")
        self.questions.flush()
        reply = json.loads(sys.stdin.readline() or "{}")
        if "error" in reply or "answer" not in reply:
            raise RuntimeError(f"The worker could not answer: {reply.get('error', 'no answer')}")
        return reply["answer"]


def main(request_path: str, channel: WorkerChannel) -> None:
    from chalicelib.rules import job_hosts

    request = json.loads(Path(request_path).read_text())
    job_hosts.use(job_hosts.HostPolicy.from_dict(request.get("policy")))
    core = _core(request["core"])
    arguments = {name: Path(value) if name in PATH_ARGUMENTS and value is not None else value
                 for name, value in request["arguments"].items()}
    for question in request.get("questions", []):
        arguments[QUESTIONS[question]] = lambda payload, question=question: channel.ask(question, payload)
    # GDAL opens a relative path that QGIS leaves as it is (`data.gpkg`) from the working
    # directory: the project's, as the source checks take it.
    os.chdir(arguments["project_dir"])
    feedback = core(**arguments)
    Path(request["feedback"]).write_text(json.dumps(feedback))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _load_cores() -> None:
    """Import every module of the cores now, QGIS loaded: a job does not wait for them, and none
    is imported once the process has given up root."""
    package = importlib.import_module(CORES_PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{CORES_PACKAGE}.{module.name}")


def _core(name: str) -> Callable[..., dict[str, Any]]:
    """The core `name`, loaded already: KeyError for a name that is none."""
    core = getattr(sys.modules.get(f"{CORES_PACKAGE}.{name}"), name, None)
    if not callable(core):
        raise KeyError(name)
    return core


def wait_for_request(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m job_containers.child")
    parser.add_argument("--ask-fd", type=int, required=True)
    parser.add_argument("--uid", type=int)
    parser.add_argument("--gid", type=int)
    options = parser.parse_args(argv)

    from job_containers import sandbox
    from job_containers.cores import qgis_app

    qgis_app.start()
    _load_cores()
    if options.uid is not None:
        sandbox.become(options.uid, options.gid, Path(os.environ["HOME"]))
    channel = WorkerChannel(options.ask_fd)
    request_path = sys.stdin.readline().strip()
    if not request_path:  # the worker stopped before it had a job for this process
        os._exit(0)
    main(request_path, channel)


if __name__ == "__main__":
    wait_for_request()
