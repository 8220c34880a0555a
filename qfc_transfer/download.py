"""`qfc-transfer download`: a stored file (one version of it) to a local file, in parallel ranges.

The API answers a download with a redirect to a presigned S3 URL; we take the URL without
following it and fetch 8 MiB ranges from S3 ourselves, written at their offsets into
`<file>.part`. Only when the whole `.part` has the checksums the API recorded is it renamed
into place, so a failed or wrong download never replaces anything.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin

import requests

from chalicelib.rules.checksums import PART_SIZE, Checksums, Hasher

from . import parallel, state
from .api import TIMEOUT, Api, file_path, http
from .errors import TransferError

Log = Callable[[str], None]

RANGE_SIZE = PART_SIZE
_READ_BLOCK = 1024 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Downloaded:
    path: Path
    name: str
    version_id: str | None
    size: int
    md5sum: str
    sha256: str
    fetched_ranges: int
    total_ranges: int

    def summary(self) -> str:
        return (f"{self.path}: {self.size} bytes of {self.name} (version {self.version_id}), "
                f"{self.fetched_ranges} of {self.total_ranges} ranges fetched now, "
                f"md5sum {self.md5sum} and sha256 {self.sha256} verified")


def default_local_path(name: str, local: Path | None) -> Path:
    """LOCAL_FILE as given, or the remote file's basename, inside LOCAL_FILE if that is a folder."""
    basename = PurePosixPath(name).name
    if local is None:
        return Path(basename)
    return local / basename if local.is_dir() else local


def download(api: Api, project_id: str, name: str, local: Path, *, version: str | None = None,
             workers: int = 4, show_progress: bool = True, log: Log = lambda _: None,
             on_range: Callable[[int], None] | None = None) -> Downloaded:
    """Download `name` (the latest version, or `version`) to `local`, resuming a saved partial
    download. `on_range(index)` is called as each range lands (tests use it to interrupt)."""
    metadata = api.json("GET", file_path("files/metadata", project_id, name))
    wanted = _pick_version(metadata, version, name)
    size = int(wanted["size"])
    identity = {"url": api.base_url, "project_id": project_id, "name": name,
                "version_id": wanted.get("version_id"), "size": size, "md5sum": wanted.get("md5sum"),
                "sha256": wanted.get("sha256"), "range_size": RANGE_SIZE}
    partial = local.with_name(local.name + ".part")
    state_file = state.state_path(local, "download")
    total = math.ceil(size / RANGE_SIZE)

    saved = state.load(state_file)
    if state.matches(saved, identity) and _has_size(partial, size):
        done = {int(index) for index in saved["done"] if 0 <= int(index) < total}
        log(f"resuming the download of {name}: {len(done)} of {total} ranges already here, "
            f"{total - len(done)} to fetch")
    else:
        done = set()
        _preallocate(partial, size)
        log(f"downloading {name} (version {identity['version_id']}, {size} bytes) in {total} ranges")
    progress_state = {**identity, "done": sorted(done)}
    state.save(state_file, progress_state)

    todo = [index for index in range(total) if index not in done]
    location = _Location(api, file_path("files", project_id, name), identity["version_id"])

    verifier = _InOrderChecksums(partial, size, done)

    def finished(index: int) -> None:
        verifier.landed(index)
        done.add(index)
        progress_state["done"] = sorted(done)
        # Saved after each range, so Ctrl-C or a crash loses at most the ranges in flight.
        state.save(state_file, progress_state)
        if on_range:
            on_range(index)

    already = sum(min(RANGE_SIZE, size - index * RANGE_SIZE) for index in done)
    progress = parallel.Progress(size, already, "download", show_progress)
    try:
        with open(partial, "r+b") as file:
            fd = file.fileno()

            def fetch(index: int, cancel: threading.Event) -> None:
                _fetch_range(fd, index, size, location, progress, cancel)

            parallel.run(todo, fetch, workers, on_done=finished)
    except BaseException:
        verifier.stop()
        raise
    finally:
        progress.close()

    _verify(partial, state_file, identity, verifier.result())
    os.replace(partial, local)
    state.remove(state_file)
    return Downloaded(local, name, identity["version_id"], size, str(identity["md5sum"]),
                      str(identity["sha256"]), len(todo), total)


def _pick_version(metadata: dict[str, Any], version: str | None, name: str) -> dict[str, Any]:
    versions = metadata.get("versions") or []
    if version is None:
        latest = [v for v in versions if v.get("is_latest")]
        # Pinning the version id keeps a rerun from mixing bytes of a newer upload into the file.
        return latest[0] if latest else {**metadata, "version_id": None}
    for candidate in versions:
        if candidate.get("version_id") == version:
            return candidate
    raise TransferError("object_not_found", f"{name} has no version {version}")


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _preallocate(path: Path, size: int) -> None:
    # Reserving the space up front fails early on a full disk instead of hours later.
    with open(path, "wb") as file:
        try:
            if size:
                os.posix_fallocate(file.fileno(), 0, size)
        except (AttributeError, OSError):  # not on every OS or file system
            pass
        file.truncate(size)


class _Location:
    """The presigned S3 URL of the version, asked of the API again when S3 says it expired."""

    def __init__(self, api: Api, path: str, version_id: str | None) -> None:
        self._api = api
        self._path = path
        self._params = {"version": version_id} if version_id else None
        self._url: str | None = None
        self._lock = threading.Lock()

    def get(self) -> str:
        with self._lock:
            if self._url is None:
                self._url = self._ask()
            return self._url

    def renew(self, stale: str) -> None:
        with self._lock:
            if self._url == stale:  # the first worker to notice renews it for all
                self._url = self._ask()

    def _ask(self) -> str:
        response = self._api.call("GET", self._path, params=self._params, allow_redirects=False)
        if response.status_code not in _REDIRECTS or "Location" not in response.headers:
            raise TransferError("bad_response", f"GET {response.url} answered {response.status_code} "
                                "instead of a redirect to the file")
        return urljoin(response.url, response.headers["Location"])


def _fetch_range(fd: int, index: int, size: int, location: _Location, progress: parallel.Progress,
                 cancel: threading.Event) -> None:
    start = index * RANGE_SIZE
    end = min(start + RANGE_SIZE, size) - 1
    what = f"downloading bytes {start}-{end}"
    for attempt in range(parallel.ATTEMPTS):
        parallel.check(cancel)
        url = location.get()
        written = 0
        status: int | None = None  # stays None when the request failed before any answer
        refused: str | None = None
        try:
            with http().get(url, headers={"Range": f"bytes={start}-{end}"}, stream=True,
                            timeout=TIMEOUT) as response:
                status = response.status_code
                refused = _range_problem(response, start, end, size)
                if refused is None:
                    for block in response.iter_content(_READ_BLOCK):
                        parallel.check(cancel)
                        block = block[:end + 1 - start - written]  # never past our range
                        _write_at(fd, block, start + written)
                        written += len(block)
                        progress.add(len(block))
        except requests.RequestException as error:
            reason = str(error)
        else:
            if refused is None and written == end + 1 - start:
                return
            reason = refused or f"the answer ended after {written} bytes"
        progress.add(-written)
        if refused is not None and status == 403:
            location.renew(url)  # the usual cause: the presigned URL expired
        elif refused is not None and status is not None and status < 500:
            raise TransferError("storage_error", f"{what}: {refused}")
        parallel.retrying(cancel, attempt, what, reason)


def _range_problem(response: requests.Response, start: int, end: int, size: int) -> str | None:
    """None when the answer holds exactly bytes start..end, else what is wrong with it."""
    if response.status_code == 206:
        expected = f"bytes {start}-{end}/{size}"
        got = response.headers.get("Content-Range", "")
        return None if got == expected else f"S3 sent Content-Range {got!r} instead of {expected!r}"
    if response.status_code == 200 and start == 0 and end == size - 1:
        return None  # the whole file was asked for; an answer without Range is the same bytes
    return f"S3 answered {response.status_code}: {' '.join(response.text.split())[:200]}"


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        count = os.pwrite(fd, view, offset)
        view, offset = view[count:], offset + count


class _InOrderChecksums:
    """The checksums of `<file>.part`, computed in a thread of its own while the download runs:
    it reads back each range once it has landed, in file order, so they are ready moments after
    the last range instead of after a second pass over the whole file."""

    def __init__(self, partial: Path, size: int, landed: set[int]) -> None:
        self._partial = partial
        self._size = size
        self._landed = set(landed)
        self._stopped = False
        self._changed = threading.Condition()
        self._outcome: Checksums | BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="qfc-transfer-verify", daemon=True)
        self._thread.start()

    def landed(self, index: int) -> None:
        with self._changed:
            self._landed.add(index)
            self._changed.notify()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()

    def result(self) -> Checksums:
        self._thread.join()
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        assert self._outcome is not None
        return self._outcome

    def _wait_for(self, index: int) -> bool:
        with self._changed:
            while index not in self._landed and not self._stopped:
                self._changed.wait()
            return not self._stopped

    def _run(self) -> None:
        hasher = Hasher()
        try:
            with open(self._partial, "rb") as file:
                for index in range(math.ceil(self._size / RANGE_SIZE)):
                    if not self._wait_for(index):
                        return
                    offset, end = index * RANGE_SIZE, min((index + 1) * RANGE_SIZE, self._size)
                    while offset < end:
                        block = os.pread(file.fileno(), min(_READ_BLOCK, end - offset), offset)
                        if not block:
                            raise TransferError("local_file_changed", f"{self._partial} got shorter")
                        hasher.update(block)
                        offset += len(block)
            self._outcome = hasher.result()
        except BaseException as error:  # handed to whoever asks for the result
            self._outcome = error


def _verify(partial: Path, state_file: Path, identity: dict[str, Any], local: Checksums) -> None:
    expected = (identity["size"], identity["md5sum"], identity["sha256"])
    if (local.size, local.md5sum, local.sha256) != expected:
        # Nothing wrong is kept: a rerun starts from scratch rather than trusting those bytes.
        partial.unlink(missing_ok=True)
        state.remove(state_file)
        raise TransferError(
            "checksum_mismatch",
            f"the downloaded bytes have size, md5sum, sha256 {(local.size, local.md5sum, local.sha256)} "
            f"but the server recorded {expected}; nothing was written, try again",
        )
