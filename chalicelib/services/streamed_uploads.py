"""A file stored as its bytes arrive: the large-request service's uploads (large_requests/).

The unmodified clients send every file, whatever its size, as one multipart POST. A body too
large for API Gateway and Lambda reaches the large-request service instead, which hands the file
part's bytes here as they arrive. They are stored part by part into an S3 multipart upload, in
8 MiB parts (so that S3's ETag of the object is the md5sum the clients compute) and a few parts
at a time (the next part arrives while the previous ones are sent): memory stays flat in the
file's size. Everything else is the direct upload's (services/files.py): the same rules before
any byte is stored, the same checks of a QGIS project file, the quota counted when the size is
known, the version recorded by `files.record_version`, the processing that follows.

Nothing is written half: until `finish`, only the multipart upload exists, and `abort` (a body
cut off, a refused file) removes it; the bucket's lifecycle rule removes any that escapes (a
process killed mid-upload).
"""

from __future__ import annotations

import hashlib
import io
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from tempfile import SpooledTemporaryFile

from chalicelib.adapters import storage
from chalicelib.models import FileVersion
from chalicelib.observability import count_bytes
from chalicelib.rules import checksums, quota
from chalicelib.rules.checksums import PART_SIZE, Checksums
from chalicelib.rules.file_rules import check_qgis_project
from chalicelib.services import files
from chalicelib.services.accounts import owner_of
from chalicelib.services.auth import Caller

# Parts being sent to S3 at once while the next one arrives: memory is this many parts, plus
# the one being filled.
PARTS_IN_FLIGHT = 3


class StreamedUpload:
    """One file's bytes, written as they arrive; `finish` makes them the file's new version,
    `abort` leaves nothing behind. One thread writes."""

    def __init__(self, caller: Caller, target: files.UploadTarget) -> None:
        self.caller = caller
        self.target = target
        self.key = storage.file_key(target.project.id, target.name)
        self.size = 0
        self._filling = bytearray()
        self._sha256 = hashlib.sha256()
        self._upload_id: str | None = None
        self._parts: list[Future[tuple[bytes, str]]] = []
        self._senders = ThreadPoolExecutor(PARTS_IN_FLIGHT, thread_name_prefix="part")
        # The SHA-256 goes through the parts in order, beside the MD5s of the senders' threads.
        self._hashing = ThreadPoolExecutor(1, thread_name_prefix="sha256")
        self._room = threading.Semaphore(PARTS_IN_FLIGHT)
        # A QGIS project file is checked like a direct upload's, from a copy (small ones stay in memory).
        self._copy = SpooledTemporaryFile(max_size=PART_SIZE) if target.is_qgis else None  # noqa: SIM115
        self._done = False

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        self.size += len(view)
        if self._copy is not None:
            self._copy.write(view)
        while view:
            room = PART_SIZE - len(self._filling)
            if room == 0:
                # A full part goes once more bytes come: the last part, of any size, is sent by
                # `finish`, and a file of exactly one part is stored whole (its ETag a plain MD5).
                part, self._filling = self._filling, bytearray()  # handed on whole, never copied
                self._send(part)
                room = PART_SIZE
            self._filling += view[:room]
            view = view[room:]

    def _send(self, part: bytearray) -> None:
        if self._upload_id is None:
            content_type = files.content_type_for(self.target.name)
            self._upload_id = storage.create_multipart_upload(self.key, content_type)
        self._hashing.submit(self._sha256.update, part)
        self._room.acquire()  # wait while PARTS_IN_FLIGHT parts are on their way
        sent = self._senders.submit(self._send_part, len(self._parts) + 1, part)
        sent.add_done_callback(lambda _: self._room.release())
        self._parts.append(sent)

    def _send_part(self, number: int, part: bytearray) -> tuple[bytes, str]:
        md5 = hashlib.md5(part).digest()
        return md5, storage.upload_part(self.key, self._upload_id, number, part, md5)

    def finish(self) -> FileVersion:
        """The bytes, all received, as the file's newest version (checked, counted, recorded)."""
        last, self._filling = self._filling, bytearray()
        if self._copy is not None:
            self._copy.seek(0)
            check_qgis_project(self.target.name, self._copy)
        if self._upload_id is None:
            version = files.store(self.caller, self.target, files.receive(io.BytesIO(last)))
            self._close()
            return version
        self._send(last)
        md5s = [sent.result()[0] for sent in self._parts]
        self._hashing.submit(lambda: None).result()  # every part hashed
        sums = Checksums(size=self.size, md5sum=checksums.etag_of(md5s), sha256=self._sha256.hexdigest())
        owner = owner_of(self.target.project, self.caller.user)
        quota.reserve(owner, self.size, self.caller.client_type)
        try:
            parts = [{"PartNumber": number, "ETag": sent.result()[1]}
                     for number, sent in enumerate(self._parts, start=1)]
            assembled = storage.complete_multipart_upload(self.key, self._upload_id, parts)
        except Exception:
            quota.release(owner.username_key, self.size)
            raise
        self._close()
        version = files.record_version(self.caller, self.target, assembled.version_id, sums)
        count_bytes("BytesUploaded", self.size)
        return version

    def abort(self) -> None:
        """Leave nothing: the parts sent are dropped with the multipart upload. Safe to call
        after `finish`, and more than once."""
        if self._done:
            return
        for sent in self._parts:
            sent.cancel()
        self._senders.shutdown(wait=True)
        if self._upload_id is not None:
            storage.abort_multipart_upload(self.key, self._upload_id)
        self._close()

    def _close(self) -> None:
        self._done = True
        self._senders.shutdown(wait=True)
        self._hashing.shutdown(wait=False)
        if self._copy is not None:
            self._copy.close()


def begin(caller: Caller, target: files.UploadTarget, body_bytes: int | None) -> StreamedUpload:
    """An upload to `target`, whose rules the caller passed (`files.check_upload`). With the
    body's length, an upload that cannot fit the owner's quota is refused before any byte is read."""
    if body_bytes is not None:
        quota.check_fits(owner_of(target.project, caller.user), body_bytes, caller.client_type)
    return StreamedUpload(caller, target)
