"""One local stack per data folder, and how other commands find it.

`./dev run` takes an exclusive `flock` on `<data dir>/stack.lock` before it touches the state, and
keeps it for as long as it runs; the AWS stand-in, which writes the state, holds it too (it
inherits the open file). The kernel drops the lock when both have ended, however they end: a
second stack on the same folder is refused, naming the first, instead of compacting the journal
under it. Beside the lock, `stack.json` says who holds it and where it listens, so that
`./dev createuser` and `createorg` find the running stack from the data folder alone.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

LOCK_NAME = "stack.lock"
INFO_NAME = "stack.json"


def claim(data_dir: Path) -> int:
    """Lock the data folder for this process; the open file descriptor holding the lock (pass it
    on to a child that must keep the folder locked). Refuses (SystemExit) when a stack holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise SystemExit(_in_use_message(data_dir)) from None
    # Whatever is left from an earlier stack is stale: its lock is gone.
    (data_dir / INFO_NAME).unlink(missing_ok=True)
    return descriptor


def publish(data_dir: Path, **info: Any) -> None:
    """Say who holds the lock and where it listens (replaced whole: readers see the old or the new)."""
    path = data_dir / INFO_NAME
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(info) + "\n")
    partial.replace(path)


def running_stack(data_dir: Path) -> dict[str, Any] | None:
    """What the stack running on `data_dir` published, or None when no stack holds its lock."""
    try:
        descriptor = os.open(data_dir / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        # A shared lock is granted only when no stack holds the exclusive one.
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _published(data_dir) or {}
    finally:
        os.close(descriptor)
    return None


def _published(data_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((data_dir / INFO_NAME).read_text())
    except (OSError, ValueError):
        return None


def describe(info: dict[str, Any]) -> str:
    """The running stack in a few words, from what it published."""
    if not info:
        return "a local stack that is starting"
    text = (f"the local stack of process {info['pid']} (API on {info['api_url']}, "
            f"AWS stand-in on port {info['aws_port']}")
    if info.get("aws_pid"):
        text += f", process {info['aws_pid']}"
    return text + ")"


def _in_use_message(data_dir: Path) -> str:
    info = _published(data_dir) or {}
    stop = f"stop it first (Ctrl-C where it runs, or `kill {info['pid']}`)" if info else "stop it first"
    return (f"The data folder {data_dir} is in use by {describe(info)}.\n"
            f"Two stacks on one data folder would overwrite each other's state: {stop}, "
            f"or give this one a folder of its own with QFC_DATA_DIR.")
