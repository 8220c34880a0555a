"""Who the QGIS child is and what it can see: nothing to steal, and nothing outside its folders.

A project file is hostile input, and QGIS and GDAL read what it names. Whatever the source checks
(sources.py) miss, the child's own identity limits:

- **A user of its own.** When the worker runs as root (its container on Fargate, CI), each worker
  process takes a uid of its own from a range (`QFC_JOB_UID_BASE`, 128 uids, one per worker on a
  machine, claimed with a lock in /run/lock) and its QGIS child drops to it before it reads any request: the
  worker's `/proc/<pid>/environ`, the local stack's data folder (0700), other workers' job folders
  and every file no other user may read stay closed to it. The child loads QGIS as root first
  (its code and Python's may lie where only root can read), then gives up root for good.
- **Nothing secret in its environment.** The child starts from an empty environment plus what
  QGIS, GDAL and its own folders need, so `env('…')` in an expression finds no credential, no
  `AWS_*`, no `QFC_*`, no container-credentials URI.
- **Folders only it can read**: its scratch folder (QGIS profile, Qt runtime, temporary files) and
  its job's folder are 0700 and belong to its uid.

A worker that is not root (`./dev run` as an ordinary user) cannot switch users: its children run
as itself, with the checks and the empty environment only, and the worker says so when it starts
(docs/security.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

UID_RANGE = 128
DEFAULT_UID_BASE = 61000  # below systemd's dynamic users (61184-65519), above ordinary accounts
JOB_FOLDER_PREFIX = "qfc-job-"  # then the pid of the worker that made it
# One place per machine, whatever TMPDIR a worker has: two workers must never share a uid.
UID_LOCKS = Path("/run/lock/qfc-job-uids")
CHILD_FOLDER_PREFIX = "qfc-child-"
# Variables the child may inherit from the worker: where QGIS, GDAL and PROJ find their data.
_INHERITED = ("QGIS_PREFIX_PATH", "GDAL_DATA", "PROJ_DATA", "PROJ_LIB", "LD_LIBRARY_PATH")
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_NO_NEW_PRIVS = 1, 4, 38


@dataclass(frozen=True)
class Identity:
    """The uid and gid the QGIS child runs as; None when it runs as the worker itself."""

    uid: int | None = None
    gid: int | None = None

    @property
    def separate(self) -> bool:
        return self.uid is not None


_identity: Identity | None = None
_uid_lock = None  # the open, locked file that holds this process's uid


def identity() -> Identity:
    """This worker's child identity, claimed once per process."""
    global _identity
    if _identity is None:
        _identity = _claim_identity() if os.geteuid() == 0 else Identity()
    return _identity


def _claim_identity() -> Identity:
    """The first uid of the range no other live worker on this machine holds (a lock on a file
    per uid, released by the kernel when the worker ends, however it ends)."""
    global _uid_lock
    _check_reachable(Path(tempfile.gettempdir()))
    base = int(os.environ.get("QFC_JOB_UID_BASE") or DEFAULT_UID_BASE)
    UID_LOCKS.mkdir(mode=0o700, parents=True, exist_ok=True)
    locks = UID_LOCKS
    if locks.is_symlink() or locks.stat().st_uid != 0:
        raise RuntimeError(f"{locks} must be a folder of root's: refusing to use it")
    for uid in range(base, base + UID_RANGE):
        lock = (locks / str(uid)).open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        _uid_lock = lock
        return Identity(uid, uid)
    raise RuntimeError(f"All {UID_RANGE} job uids from {base} are in use by other workers")


def _check_reachable(folder: Path) -> None:
    """Job folders are made in `folder`: the job's user must be able to pass through it."""
    for place in (folder.resolve(), *folder.resolve().parents):
        if not place.stat().st_mode & stat.S_IXOTH:
            raise RuntimeError(f"Job folders go to {folder}, but {place} is closed to other users, such as"
                               " the users jobs run as: set TMPDIR to a folder everyone may pass through"
                               " (/tmp).")


def give(path: Path) -> None:
    """Hand `path` (and everything under it) to the child's uid; nothing to do without one."""
    ident = identity()
    if not ident.separate:
        return
    os.chown(path, ident.uid, ident.gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), ident.uid, ident.gid, follow_symlinks=False)


@contextlib.contextmanager
def job_folder(job_id: str) -> Iterator[Path]:
    """A fresh folder for one job, 0700, named after this worker's pid (so that a later worker
    can tell a killed worker's leftovers), removed afterwards with whatever is in it."""
    root = Path(tempfile.mkdtemp(prefix=f"{JOB_FOLDER_PREFIX}{os.getpid()}-{job_id}-"))
    try:
        give(root)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def child_folder() -> Path:
    """A fresh scratch folder for a child: its QGIS profile, Qt runtime and temporary files."""
    folder = Path(tempfile.mkdtemp(prefix=f"{CHILD_FOLDER_PREFIX}{os.getpid()}-"))
    for name in ("runtime", "profile", "tmp"):
        (folder / name).mkdir(mode=0o700)
    return folder


def remove_folders_of_killed_workers() -> None:
    """A worker that was killed (not stopped) could not remove its job's and child's folders;
    they hold tenant data. Those of live workers (their pid in the name) are left alone."""
    for prefix in (JOB_FOLDER_PREFIX, CHILD_FOLDER_PREFIX):
        for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*-*"):
            pid = folder.name.removeprefix(prefix).split("-")[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                shutil.rmtree(folder, ignore_errors=True)


def regular_files(folder: Path) -> list[Path]:
    """The regular files under `folder`, through no link: a child may have left links to files
    only the worker may read, which the worker must not take for the child's output."""
    found = []
    for directory, _, names in os.walk(folder):
        for name in names:
            path = Path(directory) / name
            if stat.S_ISREG(path.lstat().st_mode):
                found.append(path)
    return sorted(found)


def open_regular(path: Path, root: Path) -> BinaryIO:
    """`path` (under `root`) for reading, if it is a regular file reached through no link."""
    real_root = Path(os.path.realpath(root))
    if Path(os.path.realpath(path.parent)) != real_root / path.parent.relative_to(root):
        raise PermissionError(f"{path.name}: a folder on its way is a link")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PermissionError(f"{path.name} is not a regular file")
    return os.fdopen(fd, "rb")


def child_environment(folder: Path, proxy: str | None) -> dict[str, str]:
    """The whole environment of a child whose scratch folder is `folder`; `proxy` is the
    worker's egress proxy (`127.0.0.1:port`), through which all its web requests go."""
    environment = {name: os.environ[name] for name in _INHERITED if os.environ.get(name)}
    environment.update({
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(folder),
        "TMPDIR": str(folder / "tmp"),
        "XDG_RUNTIME_DIR": str(folder / "runtime"),
        "QGIS_CUSTOM_CONFIG_PATH": str(folder / "profile"),
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONFAULTHANDLER": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        # The job_containers package, from this tree (the child does not look in its working
        # directory, which is the job's folder).
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        # Network sources give up in seconds, far below a job's time limit.
        "PGCONNECT_TIMEOUT": "5",
        "GDAL_HTTP_CONNECTTIMEOUT": "5",
        "GDAL_HTTP_TIMEOUT": "20",
        "GDAL_HTTP_MAX_RETRY": "0",
        # GDAL reads no file list of remote folders, runs no Python from VRTs, and opens no VRT
        # at all: a VRT names other files and URLs inside a file the source checks do not read.
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "GDAL_VRT_ENABLE_PYTHON": "NO",
        "GDAL_SKIP": "VRT OGR_VRT",
        "PROJ_NETWORK": "OFF",
    })
    if proxy:
        environment.update({"GDAL_HTTP_PROXY": proxy, "http_proxy": f"http://{proxy}",
                            "https_proxy": f"http://{proxy}"})
    return environment


def child_command(module: str) -> list[str]:
    """`python -P -s -m module`: not the working directory (the job's folder) nor the user's
    site-packages on the import path."""
    return [sys.executable, "-P", "-s", "-m", module]


def worker_process_guard() -> None:
    """In the worker: no process of its uid may read its memory or environment (a child that
    runs as the worker itself, when the worker is not root)."""
    _prctl(_PR_SET_DUMPABLE, 0)


def become(uid: int, gid: int, folder: Path) -> None:
    """In the child, once QGIS is loaded and before it reads a request: become `uid` for good,
    own the scratch `folder`, gain no privilege by any executable, and still die with the worker
    (changing the uid cancels the parent-death signal)."""
    parent = os.getppid()
    for path in (folder, *(Path(dirpath) / name for dirpath, dirs, files in os.walk(folder)
                           for name in dirs + files)):
        os.chown(path, uid, gid, follow_symlinks=False)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    die_with_parent()
    if os.getppid() != parent:  # the worker died before the signal was set again
        os._exit(1)


def die_with_parent() -> None:
    """The kernel kills this process when the worker dies: a QGIS left running would have no one
    to report to."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")
