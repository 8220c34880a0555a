"""Running a job core in a child process of its own, so that whatever QGIS does (crash, hang,
run out of memory) ends only that process and becomes a failed job with a readable reason.

The child (`python -m job_containers.child`) runs one core and writes its feedback to a file;
everything it prints goes to the job's log. The parent enforces the time limit and the memory
limit (it samples the child's resident memory), and turns a signal or an exit code into words.

A child is used for one job only, then ends. The worker starts the next one ahead, when it
starts and after each job (`prepare_a_child`): loading QGIS takes most of a second, which a job
then no longer waits for.
Each child has a folder of its own for QGIS's profile, Qt's runtime files and temporary files,
removed when it ends (a child exits without QGIS's teardown, so it cannot clean up itself).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_SECONDS = 0.1
PR_SET_PDEATHSIG = 1
# The folder that holds the job_containers package, where the child imports it from.
ROOT = Path(__file__).resolve().parent.parent
LOG_TAIL_BYTES = 256 * 1024
CHILD_FOLDER_PREFIX = "qfc-child-"  # then the pid of the process that started the child


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


def _die_with_parent() -> None:
    """In the child, before it runs: the kernel kills it if the worker dies (a worker killed
    mid-job must not leave QGIS running without anyone to report to)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _tail(path: Path) -> str:
    if not path.exists():
        return ""
    with path.open("rb") as log:
        size = log.seek(0, os.SEEK_END)
        log.seek(max(size - LOG_TAIL_BYTES, 0))
        text = log.read().decode("utf-8", "replace")
    return text if size <= LOG_TAIL_BYTES else "[…]\n" + text


@dataclass
class _Child:
    process: subprocess.Popen
    folder: Path  # its scratch folders and its log, removed with it

    @property
    def log_path(self) -> Path:
        return self.folder / "output.log"

    def discard(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdin:
            self.process.stdin.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _start_child() -> _Child:
    """A child loading QGIS and the cores, then waiting for a request's path on its stdin."""
    folder = Path(tempfile.mkdtemp(prefix=f"{CHILD_FOLDER_PREFIX}{os.getpid()}-"))
    scratch = {"XDG_RUNTIME_DIR": folder / "runtime", "QGIS_CUSTOM_CONFIG_PATH": folder / "profile",
               "TMPDIR": folder / "tmp"}
    for path in scratch.values():
        path.mkdir(mode=0o700)
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONFAULTHANDLER": "1",
                   **{name: str(path) for name, path in scratch.items()}}
    with (folder / "output.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "job_containers.child"], cwd=ROOT,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.PIPE,
                                   env=environment, start_new_session=True, preexec_fn=_die_with_parent)
    return _Child(process, folder)


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


def remove_folders_of_killed_workers() -> None:
    """A worker that was killed (not stopped) could not remove its waiting child's folder."""
    for folder in Path(tempfile.gettempdir()).glob(f"{CHILD_FOLDER_PREFIX}*-*"):
        pid = folder.name.removeprefix(CHILD_FOLDER_PREFIX).split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def _take_child() -> _Child:
    global _ready
    child, _ready = _ready, None
    if child is not None and child.process.poll() is None:
        return child
    if child is not None:  # it ended while waiting (it never received a job): start another
        child.discard()
    return _start_child()


def run_core(core: str, arguments: dict[str, Any], workdir: Path, *, timeout_seconds: float,
             memory_mb: int, should_stop=lambda: False) -> ChildResult:
    """Run `core` (a name of `child.CORES`) with `arguments` in a child process; `should_stop`
    is asked as it runs (a lost lease stops the job)."""
    request, feedback_path = workdir / "request.json", workdir / "feedback.json"
    request.write_text(json.dumps({"core": core, "arguments": arguments, "feedback": str(feedback_path)}))
    child = _take_child()
    try:
        return _supervise(child, core, request, feedback_path, timeout_seconds, memory_mb, should_stop)
    finally:
        child.discard()


def _supervise(child: _Child, core: str, request: Path, feedback_path: Path, timeout_seconds: float,
               memory_mb: int, should_stop) -> ChildResult:
    started = time.monotonic()
    peak = 0.0
    failure = None
    process = child.process
    try:
        process.stdin.write(f"{request}\n".encode())
        process.stdin.close()
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
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=SAMPLE_SECONDS)
    seconds = time.monotonic() - started
    if failure is None and process.returncode != 0:
        failure = (f"QGIS crashed ({_signal_name(process.returncode)})." if process.returncode < 0
                   else f"The job process exited with code {process.returncode}.")
    feedback = None
    if feedback_path.exists():
        try:
            feedback = json.loads(feedback_path.read_text())
        except ValueError:
            failure = failure or "The job's report was unreadable."
    elif failure is None:
        failure = "The job process ended without a report."
    outcome = "failed" if failure else "done"
    summary = f"[job] {core}: {outcome} in {seconds:.1f} s, peak memory {peak:.0f} MB\n"
    return ChildResult(feedback, _tail(child.log_path) + summary, failure, peak, seconds)
