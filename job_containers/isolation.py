"""Running a job core in a child process of its own, so that whatever QGIS does (crash, hang,
run out of memory) ends only that process and becomes a failed job with a readable reason.

The child (`python -m job_containers.child REQUEST`) runs one core and writes its feedback to a
file; everything it prints goes to the job's log. The parent enforces the time limit and the
memory limit (it samples the child's resident memory), and turns a signal or an exit code into
words.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_SECONDS = 0.1
PR_SET_PDEATHSIG = 1
# The folder that holds the job_containers package, where the child imports it from.
ROOT = Path(__file__).resolve().parent.parent
LOG_TAIL_BYTES = 256 * 1024


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


def run_core(core: str, arguments: dict[str, Any], workdir: Path, *, timeout_seconds: float,
             memory_mb: int, should_stop=lambda: False) -> ChildResult:
    """Run `core` (a name of `child.CORES`) with `arguments` in a child process; `should_stop`
    is asked as it runs (a lost lease stops the job)."""
    request, feedback_path, log_path = (workdir / "request.json", workdir / "feedback.json",
                                        workdir / "output.log")
    request.write_text(json.dumps({"core": core, "arguments": arguments, "feedback": str(feedback_path)}))
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONFAULTHANDLER": "1"}
    started = time.monotonic()
    peak = 0.0
    failure = None
    with log_path.open("wb") as log:
        child = subprocess.Popen([sys.executable, "-m", "job_containers.child", str(request)], cwd=ROOT,
                                 stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=environment, start_new_session=True, preexec_fn=_die_with_parent)
        while child.poll() is None:
            peak = max(peak, _rss_mb(child.pid))
            elapsed = time.monotonic() - started
            if elapsed > timeout_seconds:
                failure = f"The job took longer than {timeout_seconds:g} s and was stopped."
            elif peak > memory_mb:
                failure = f"The job used more than {memory_mb} MB of memory and was stopped."
            elif should_stop():
                failure = "The job was stopped: its worker lost its hold on the project."
            if failure:
                child.kill()
                child.wait()
                break
            time.sleep(SAMPLE_SECONDS)
    seconds = time.monotonic() - started
    if failure is None and child.returncode != 0:
        failure = (f"QGIS crashed ({_signal_name(child.returncode)})." if child.returncode < 0
                   else f"The job process exited with code {child.returncode}.")
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
    return ChildResult(feedback, _tail(log_path) + summary, failure, peak, seconds)
