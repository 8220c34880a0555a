"""Running a job core in a child process of its own, so that whatever QGIS does (crash, hang,
run out of memory) ends only that process and becomes a failed job with a readable reason, and
so that a hostile project meets a process with nothing to steal (sandbox.py).

The child (`python -m job_containers.child`) runs one core and writes its feedback to a file;
everything it prints goes to the job's log. The parent enforces the time limit and the memory
limit (it samples the child's resident memory), and turns a signal or an exit code into words.
While it runs, the child may ask its worker for something only the worker can do (fetch the
owner's shared datasets, which needs credentials the child never has): one JSON line on a pipe
of its own, answered with one line on its stdin (child.ask_worker).

A child is used for one job only, then ends. The worker starts the next one ahead, when it
starts and after each job (`prepare_a_child`): loading QGIS takes most of a second, which a job
then no longer waits for.
Each child has a folder of its own for QGIS's profile, Qt's runtime files and temporary files,
removed when it ends (a child exits without QGIS's teardown, so it cannot clean up itself).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import site
import subprocess
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.rules.job_hosts import HostPolicy
from job_containers import egress, sandbox

SAMPLE_SECONDS = 0.1
LOG_TAIL_BYTES = 256 * 1024
# The longest line a child may send its worker (a question and its payload), and the largest
# report the worker reads (800 layers with their fields report about 20 MB).
MESSAGE_BYTES = 1024 * 1024
MAX_REPORT_BYTES = 256 * 1024 * 1024
# A child's questions to its worker, by name: each takes the question's payload and returns the
# answer (JSON data).
Answers = dict[str, Callable[[Any], Any]]


@dataclass(frozen=True)
class ChildResult:
    feedback: dict[str, Any] | None
    output: str
    failure: str | None  # why the child did not finish, if it did not
    peak_rss_mb: float
    seconds: float

    @property
    def error(self) -> str | None:
        """Why the job failed: the child's end, or the error its feedback reports."""
        if self.failure:
            return self.failure
        return (self.feedback or {}).get("error")


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _tail(path: Path) -> str:
    try:
        log = sandbox.open_regular(path, path.parent)
    except OSError:
        return ""
    with log:
        size = log.seek(0, os.SEEK_END)
        log.seek(max(size - LOG_TAIL_BYTES, 0))
        text = log.read().decode("utf-8", "replace")
    return text if size <= LOG_TAIL_BYTES else "[…]\n" + text


@dataclass
class _Child:
    process: subprocess.Popen
    folder: Path  # its scratch folders and its log, removed with it
    questions: Any  # the read end of the pipe the child asks its worker on
    asking: bool = True  # until the child closes its end
    answered: set[str] = field(default_factory=set)  # the questions it asked

    @property
    def log_path(self) -> Path:
        return self.folder / "output.log"

    def discard(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdin:
            self.process.stdin.close()
        self.questions.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _start_child() -> _Child:
    """A child loading QGIS and the cores, then waiting for a request's path on its stdin."""
    folder = sandbox.child_folder()
    identity = sandbox.identity()
    questions, asking = os.pipe()
    command = [*sandbox.child_command("job_containers.child"), "--ask-fd", str(asking)]
    if identity.separate:
        command += ["--uid", str(identity.uid), "--gid", str(identity.gid)]
    environment = sandbox.child_environment(folder, egress.proxy().address)
    try:
        with (folder / "output.log").open("wb") as log:
            process = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.PIPE, env=environment, start_new_session=True,
                                       pass_fds=(asking,), preexec_fn=sandbox.die_with_parent)
    finally:
        os.close(asking)
    return _Child(process, folder, os.fdopen(questions, "rb"))


_ready: _Child | None = None  # the next job's child, started ahead


def prepare_a_child() -> None:
    """Start the next job's child now (if none is waiting), so that QGIS is loaded when the job
    comes. The worker calls it between jobs, not while one is finishing: the child's start would
    take CPU from the job's last steps."""
    global _ready
    if _ready is None:
        _ready = _start_child()


@atexit.register
def _discard_ready() -> None:
    global _ready
    if _ready is not None:
        _ready.discard()
        _ready = None


def _take_child() -> _Child:
    global _ready
    child, _ready = _ready, None
    if child is not None and child.process.poll() is None:
        return child
    if child is not None:  # it ended while waiting (it never received a job): start another
        child.discard()
    return _start_child()


def run_core(core: str, arguments: dict[str, Any], workdir: Path, *, timeout_seconds: float,
             memory_mb: int, should_stop=lambda: False, policy: HostPolicy | None = None,
             answers: Answers | None = None,
             network_seconds: float = egress.DEFAULT_BUDGET_SECONDS) -> ChildResult:
    """Run `core` (a core of job_containers/cores) with `arguments` in a child process, in `workdir`
    (the job's folder, which the child may use); `should_stop` is asked as it runs (a lost lease
    stops the job). `policy`: the hosts the job may reach (the worker's egress proxy holds it to
    that too), and `network_seconds` how long its requests may stall in all. `answers`: what
    the child may ask its worker."""
    policy = policy or HostPolicy()
    request, feedback_path = workdir / "request.json", workdir / "feedback.json"
    request.write_text(json.dumps({"core": core, "arguments": arguments, "feedback": str(feedback_path),
                                   "policy": policy.as_dict(), "questions": sorted(answers or {})}))
    egress.proxy().begin_job(policy, network_seconds)
    child = _take_child()
    try:
        return _supervise(child, core, request, feedback_path, timeout_seconds, memory_mb, should_stop,
                          answers or {})
    finally:
        child.discard()


def _answer(child: _Child, answers: Answers) -> None:
    """Read one question of the child and write back its answer (or `{"error": ...}`). Each
    question is answered once: the answers cost the worker work (downloads), which a child, if
    it went astray, must not make it repeat."""
    line = child.questions.readline(MESSAGE_BYTES)
    if not line:
        child.asking = False  # it closed its end: it is ending
        return
    try:
        question = json.loads(line)
        name = question["ask"]
        if name in child.answered:
            raise ValueError(f"{name!r} was asked already")
        child.answered.add(name)
        reply = {"answer": answers[name](question.get("payload"))}
    except (ValueError, KeyError, TypeError) as error:
        reply = {"error": f"{type(error).__name__}: {error}"}
    try:
        child.process.stdin.write(json.dumps(reply).encode() + b"\n")
        child.process.stdin.flush()
    except OSError:
        pass  # it ended meanwhile


def _supervise(child: _Child, core: str, request: Path, feedback_path: Path, timeout_seconds: float,
               memory_mb: int, should_stop, answers: Answers) -> ChildResult:
    started = time.monotonic()
    peak = 0.0
    failure = None
    process = child.process
    try:
        process.stdin.write(f"{request}\n".encode())
        process.stdin.flush()
    except OSError:
        pass  # it ended meanwhile: its exit code says how
    while process.poll() is None:
        peak = max(peak, _rss_mb(process.pid))
        elapsed = time.monotonic() - started
        if elapsed > timeout_seconds:
            failure = f"The job took longer than {timeout_seconds:g} s and was stopped."
        elif peak > memory_mb:
            failure = f"The job used more than {memory_mb} MB of memory and was stopped."
        elif should_stop():
            failure = "The job was stopped: its worker lost its hold on the project."
        if failure:
            process.kill()
            process.wait()
            break
        if not child.asking:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=SAMPLE_SECONDS)
        elif select.select([child.questions], [], [], SAMPLE_SECONDS)[0]:
            _answer(child, answers)
    seconds = time.monotonic() - started
    if failure is None and process.returncode != 0:
        failure = (f"QGIS crashed ({_signal_name(process.returncode)})." if process.returncode < 0
                   else f"The job process exited with code {process.returncode}.")
    places = _server_paths(request.parent, child.folder)
    feedback = None
    try:
        with sandbox.open_regular(feedback_path, feedback_path.parent) as report:
            text = report.read(MAX_REPORT_BYTES + 1)
        if len(text) > MAX_REPORT_BYTES:
            raise ValueError("too large")
        feedback = json.loads(_without(places, text.decode("utf-8")))
    except FileNotFoundError:
        failure = failure or "The job process ended without a report."
    except (OSError, ValueError):
        failure = failure or "The job's report was unreadable."
    outcome = "failed" if failure else "done"
    summary = f"[job] {core}: {outcome} in {seconds:.1f} s, peak memory {peak:.0f} MB\n"
    output = _without(places, _tail(child.log_path) + summary)
    return ChildResult(feedback, output, failure, peak, seconds)


def _server_paths(workdir: Path, child_folder: Path) -> list[tuple[str, str]]:
    """The worker's own places, as they appear in QGIS's messages and Python's tracebacks, and
    what is shown instead: the job's files by their names in the project, the rest by a name
    that gives nothing of the server away."""
    code = str(Path(__file__).resolve().parent.parent)
    python = sorted({sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
                    | set(site.getsitepackages()), key=len, reverse=True)
    places = [(f"{workdir}/project/", ""), (f"{workdir}/out/", ""), (f"{workdir}/", ""), (str(workdir), "."),
              (f"{child_folder}/", ""), (str(child_folder), "."), (f"{code}/", "")]
    return places + [(f"{path}/", "<python>/") for path in python]


def _without(places: list[tuple[str, str]], text: str) -> str:
    for place, shown in places:
        text = text.replace(place, shown)
    return text
