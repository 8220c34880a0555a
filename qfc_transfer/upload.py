"""`qfc-transfer upload`: a local file to the server through presigned multipart upload.

The flow: `begin` checks the rules and the quota and answers with one presigned PUT URL per
8 MiB part; the parts go straight to S3 in parallel; `complete`, given the local file's SHA-256,
assembles them and records the new version with its checksums, whose size and SHA-256 we compare
with the local file's.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from chalicelib.rules.checksums import READ_SIZE

from . import parallel, state
from .api import TIMEOUT, Api, ApiError, file_path, http
from .errors import TransferError

Log = Callable[[str], None]

# Completing may read the whole assembled file back on the server (a completion taken over after
# S3 assembled the parts): minutes for many GB.
COMPLETE_TIMEOUT = (10, 900)
COMPLETE_POLL_SECONDS = 10
# A completion cut off on the server is taken over by a new request after 16 minutes.
COMPLETE_PATIENCE_SECONDS = 40 * 60
# The least a part's body hands urllib3 at a time (it asks for 16 KiB, and sends what it gets).
_BODY_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class LocalDigest:
    """What the server's answer is checked against. Equal SHA-256s mean equal bytes, and the
    server derives the md5sum from those very bytes, so the MD5 ETag is not computed here: it
    would triple the hashing, which competes with the transfer for the CPU."""

    size: int
    sha256: str


@dataclass(frozen=True)
class Part:
    number: int
    offset: int
    size: int


def upload(api: Api, project_id: str, local: Path, name: str, *, workers: int = 4,
           show_progress: bool = True, log: Log = lambda _: None,
           on_part: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Upload `local` as `name`, resuming a saved session when there is one (or recognising that
    it completed meanwhile); returns the API's completion answer. `on_part(part_number)` is
    called as each part lands (tests use it to interrupt an upload at a known point)."""
    stat = local.stat()
    identity = {"url": api.base_url, "project_id": project_id, "name": name,
                "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    state_file = state.state_path(local, "upload")
    local_digest = _hash_in_background(local)

    with open(local, "rb") as file:
        fd = file.fileno()
        session = _resume(api, state_file, identity, fd, log)
        if session is not None and "completed" in session:
            state.remove(state_file)
            return session["completed"]
        if session is None:
            session = api.json("POST", f"uploads/{quote(project_id, safe='')}/",
                               json={"name": name, "size": stat.st_size})
            state.save(state_file, {**identity, "upload_id": session["upload_id"]})
            log(f"uploading {local} to {session['name']}: {_parts_text(session)}")
        session_path = _session_path(project_id, session["upload_id"])

        part_size = int(session["part_size"])
        todo = [Part(int(p["part_number"]), (int(p["part_number"]) - 1) * part_size, int(p["size"]))
                for p in session["parts"]]
        already = sum(int(p["size"]) for p in session["uploaded_parts"])
        urls = _PartUrls(api, session_path, session["parts"])
        progress = parallel.Progress(stat.st_size, already, "upload", show_progress)
        try:
            parallel.run(todo, lambda part, cancel: _put_part(fd, part, urls, progress, cancel),
                         workers, on_done=lambda part: on_part(part.number) if on_part else None)
        finally:
            progress.close()

    result = _complete(api, session_path, file_path("files/metadata", project_id, name), local_digest, log)
    # The session is gone on the server now: a rerun must not try to resume it.
    state.remove(state_file)
    _compare(result, local_digest.result(), local)
    return result


def _complete(api: Api, session_path: str, metadata_path: str, local: Future[LocalDigest],
              log: Log) -> dict[str, Any]:
    """Ask the server to complete, until it has. Asking again is always safe: the server records
    each step of a completion, answers 409 while one runs (a file of many GB keeps it busy after
    the gateway's 504), and 404 once the session has become a file version."""
    deadline = time.monotonic() + COMPLETE_PATIENCE_SECONDS
    while True:
        try:
            return api.json("POST", session_path + "complete/", json={"sha256": local.result().sha256},
                            timeout=COMPLETE_TIMEOUT)
        except ApiError as error:
            if error.status == 404:
                return _stored_version(api, metadata_path, local.result())
            if error.status != 409 and error.status < 500:
                raise
            problem: TransferError = error
        except TransferError as error:  # no answer at all, e.g. a read timeout
            problem = error
        if time.monotonic() > deadline:
            raise TransferError(problem.code, f"{problem.message} (the server did not finish "
                                "completing the upload; run the same command later)") from problem
        log(f"the server is still completing the upload ({problem.code}); asking again soon")
        time.sleep(COMPLETE_POLL_SECONDS)


def _stored_version(api: Api, metadata_path: str, local: LocalDigest) -> dict[str, Any]:
    """The version a session became when it completed while we were not listening."""
    try:
        metadata = api.json("GET", metadata_path)
    except ApiError as error:
        if error.status != 404:
            raise
        metadata = {"versions": []}
    for version in metadata["versions"]:
        if (version.get("size"), version.get("sha256")) == (local.size, local.sha256):
            return {"name": metadata["name"], **version}
    raise TransferError("upload_lost", "the upload session is gone and no version of the file "
                        "matches the local one; upload it again")


def _session_path(project_id: str, upload_id: str) -> str:
    return f"uploads/{quote(project_id, safe='')}/{quote(upload_id, safe='')}/"


def _parts_text(session: dict[str, Any]) -> str:
    total = len(session["parts"]) + len(session["uploaded_parts"])
    return f"{int(session['size'])} bytes in {total} parts of {int(session['part_size'])} bytes"


def _resume(api: Api, state_file: Path, identity: dict[str, Any], fd: int,
            log: Log) -> dict[str, Any] | None:
    """The saved session's status when it belongs to this file and still exists, else None."""
    saved = state.load(state_file)
    if saved is None:
        return None
    if not state.matches(saved, identity):
        # The file (or the name) changed since: that session's parts are of no use any more.
        log("the saved upload state is for another version of the file; starting afresh")
        if saved.get("url") == identity["url"]:
            _abort_quietly(api, saved)
        state.remove(state_file)
        return None
    path = _session_path(str(saved["project_id"]), str(saved["upload_id"]))
    try:
        session = api.json("GET", path)
    except ApiError as error:
        if error.status != 404:
            raise
        metadata_path = file_path("files/metadata", str(saved["project_id"]), str(saved["name"]))
        with contextlib.suppress(TransferError):  # it may have completed after we stopped waiting
            stored = _stored_version(api, metadata_path, _digest_of(fd))
            log(f"upload {saved['upload_id']} had completed: version {stored['version_id']}")
            return {"completed": stored}
        log(f"upload {saved['upload_id']} is gone from the server (expired or aborted); starting afresh")
        state.remove(state_file)
        return None
    if _stale_parts(session, fd):
        # Same size and mtime yet other bytes (a restored copy, say): the parts cannot be reused,
        # and S3 offers no URL to overwrite a part it holds.
        log(f"parts of upload {saved['upload_id']} differ from the local file; starting afresh")
        _abort_quietly(api, saved)
        state.remove(state_file)
        return None
    total = len(session["parts"]) + len(session["uploaded_parts"])
    log(f"resuming upload {saved['upload_id']}: {len(session['uploaded_parts'])} of {total} parts "
        f"already uploaded, {len(session['parts'])} to go")
    return session


def _digest_of(fd: int) -> LocalDigest:
    sha256, offset = hashlib.sha256(), 0
    while block := os.pread(fd, READ_SIZE, offset):
        sha256.update(block)
        offset += len(block)
    return LocalDigest(offset, sha256.hexdigest())


def _stale_parts(session: dict[str, Any], fd: int) -> list[int]:
    """Parts whose S3 ETag (the MD5 of the part) is not the MD5 of that slice of the local file."""
    part_size = int(session["part_size"])
    stale = []
    for part in session["uploaded_parts"]:
        number = int(part["part_number"])
        data = os.pread(fd, int(part["size"]), (number - 1) * part_size)
        if hashlib.md5(data).hexdigest() != str(part["etag"]).strip('"'):
            stale.append(number)
    return stale


def _abort_quietly(api: Api, saved: dict[str, Any]) -> None:
    """Drop a session we will not use, so S3 frees its parts now rather than days later by its
    lifecycle rule; if that fails the session still expires by itself."""
    with contextlib.suppress(TransferError):
        api.call("DELETE", _session_path(str(saved.get("project_id")), str(saved.get("upload_id"))))


class _PartUrls:
    """Presigned PUT URLs by part number, renewed from the session status when S3 says one expired."""

    def __init__(self, api: Api, session_path: str, parts: list[dict[str, Any]]) -> None:
        self._api = api
        self._path = session_path
        self._urls = {int(p["part_number"]): str(p["url"]) for p in parts}
        self._lock = threading.Lock()

    def get(self, number: int) -> str:
        with self._lock:
            return self._urls[number]

    def renew(self, number: int, stale: str) -> None:
        with self._lock:
            # Several workers hit by the same expiry ask once: the first one renews them all.
            if self._urls.get(number) != stale:
                return
            status = self._api.json("GET", self._path)
            self._urls.update({int(p["part_number"]): str(p["url"]) for p in status["parts"]})


class _Body:
    """One part's bytes, handed to the socket block by block so that the bar moves during a part
    and an interruption is noticed mid-part. Its length makes requests send a Content-Length,
    which S3 requires of a part."""

    def __init__(self, data: bytes, progress: parallel.Progress, cancel: threading.Event) -> None:
        self._view = memoryview(data)
        self._progress = progress
        self._cancel = cancel
        self.sent = 0

    def __len__(self) -> int:
        return len(self._view)

    def __iter__(self) -> Iterator[memoryview]:
        # requests only streams bodies that are iterable; urllib3 then uses `read`.
        while block := self.read(_BODY_BLOCK):
            yield block

    def read(self, size: int = -1) -> memoryview:
        # Once every byte is out, the part is S3's whatever we do: wait for its answer rather than
        # drop the connection, so that when an interrupted upload returns no part is still landing.
        if self.sent < len(self._view):
            parallel.check(self._cancel)
        if size is None or size < 0:
            size = len(self._view) - self.sent
        # urllib3 asks for 16 KiB at a time and sends whatever it gets: larger blocks spare
        # hundreds of Python calls per part. A view, not a copy: the socket takes any buffer.
        size = max(size, _BODY_BLOCK)
        block = self._view[self.sent:self.sent + size]
        self.sent += len(block)
        self._progress.add(len(block))
        return block


def _put_part(fd: int, part: Part, urls: _PartUrls, progress: parallel.Progress,
              cancel: threading.Event) -> None:
    for attempt in range(parallel.ATTEMPTS):
        parallel.check(cancel)
        data = os.pread(fd, part.size, part.offset)
        if len(data) != part.size:
            raise TransferError("local_file_changed", "the file got shorter during the upload")
        url = urls.get(part.number)
        body = _Body(data, progress, cancel)
        try:
            response = http().put(url, data=body, timeout=TIMEOUT)
        except requests.RequestException as error:
            progress.add(-body.sent)
            parallel.retrying(cancel, attempt, f"uploading part {part.number}", str(error))
            continue
        if response.ok:
            return
        progress.add(-body.sent)
        reason = f"S3 answered {response.status_code}: {' '.join(response.text.split())[:200]}"
        if response.status_code == 403:
            urls.renew(part.number, url)  # the usual cause: the presigned URL expired
        elif response.status_code < 500:
            raise TransferError("storage_error", f"uploading part {part.number}: {reason}")
        parallel.retrying(cancel, attempt, f"uploading part {part.number}", reason)


def _hash_in_background(local: Path) -> Future[LocalDigest]:
    """The local file's digest, computed while the parts travel: its SHA-256 goes with the
    request to complete (the server records it at once and checks the stored bytes against it in
    the background), and the server's answer is checked against it.

    A daemon thread rather than a pool: an interrupted upload must not wait for it to finish
    reading a file of many gigabytes.
    """
    future: Future[LocalDigest] = Future()

    def work() -> None:
        try:
            with open(local, "rb") as file:
                future.set_result(_digest_of(file.fileno()))
        except BaseException as error:  # handed to whoever asks for the result
            future.set_exception(error)

    threading.Thread(target=work, name="qfc-transfer-hash", daemon=True).start()
    return future


def _compare(result: dict[str, Any], local: LocalDigest, path: Path) -> None:
    server = (result.get("size"), result.get("sha256"))
    if server != (local.size, local.sha256):
        raise TransferError(
            "checksum_mismatch",
            f"the server stored {result.get('name')} version {result.get('version_id')} with size, sha256 "
            f"{server} but {path} has {(local.size, local.sha256)}: the file may have changed during "
            "the upload; delete that version and upload again",
        )
