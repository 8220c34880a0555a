"""The two checksums of every stored file.

`md5sum` is the S3-style ETag with 8 MiB parts, the value both official clients compute locally
to skip unchanged files: the plain MD5 hex up to 8 MiB, otherwise the MD5 of the concatenated
binary MD5s of the parts, followed by `-<number of parts>`. `sha256` is the SHA-256 of the bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

PART_SIZE = 8 * 1024 * 1024
READ_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Checksums:
    size: int
    md5sum: str
    sha256: str


class Hasher:
    """Feed bytes in any chunking; `result()` gives the size, S3-style ETag and SHA-256."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._part = hashlib.md5()
        self._part_filled = 0
        self._part_digests: list[bytes] = []
        self._size = 0

    def update(self, data: bytes) -> None:
        self.update_sha256(data)
        self.update_md5s(data)

    def update_sha256(self, data: bytes) -> None:
        self._sha256.update(data)
        self._size += len(data)

    def update_md5s(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = PART_SIZE - self._part_filled
            chunk, view = view[:room], view[room:]
            self._part.update(chunk)
            self._part_filled += len(chunk)
            if self._part_filled == PART_SIZE:
                self._part_digests.append(self._part.digest())
                self._part, self._part_filled = hashlib.md5(), 0

    def result(self) -> Checksums:
        digests = list(self._part_digests)
        if self._part_filled or not digests:
            digests.append(self._part.digest())
        return Checksums(size=self._size, md5sum=etag_of(digests), sha256=self._sha256.hexdigest())


def md5s_of_part_etags(part_etags: list[str]) -> list[bytes] | None:
    """The MD5s S3's part ETags stand for (quoted hex, as S3 lists them); None if one is not in
    an MD5's form."""
    try:
        md5s = [bytes.fromhex(etag.strip('"')) for etag in part_etags]
    except ValueError:
        return None
    return md5s if all(len(md5) == 16 for md5 in md5s) else None


def etag_of(part_md5s: list[bytes]) -> str:
    """The S3-style ETag of a file whose 8 MiB parts have these MD5s."""
    if len(part_md5s) == 1:
        return part_md5s[0].hex()
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


class StoredPartsHasher(Hasher):
    """The checksums of an object S3 assembled from 8 MiB parts whose ETags it listed.

    S3's ETag of a part is the part's MD5 for unencrypted and SSE-S3 objects (not under SSE-KMS
    or SSE-C), so once the first part's MD5 is seen to equal its ETag, the other parts' MD5s are
    taken from their ETags and only the SHA-256 is computed: half the hashing of a large upload.
    If the first part's ETag is not its MD5, every part is hashed."""

    def __init__(self, part_etags: list[str]) -> None:
        super().__init__()
        self._etag_md5s = md5s_of_part_etags(part_etags)
        self._etags_are_md5s: bool | None = None if self._etag_md5s is not None else False

    def update(self, data: bytes) -> None:
        if self._etags_are_md5s:
            self.update_sha256(data)
            return
        super().update(data)
        if self._etags_are_md5s is None and self._part_digests:
            self._etags_are_md5s = self._part_digests[0] == self._etag_md5s[0]

    def result(self) -> Checksums:
        if not self._etags_are_md5s:
            return super().result()
        return Checksums(size=self._size, md5sum=etag_of(self._etag_md5s), sha256=self._sha256.hexdigest())


def of_chunks(chunks: Iterable[bytes]) -> Checksums:
    hasher = Hasher()
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.result()


class Checksumming:
    """Checksums of bytes in memory, computed where the bytes are on a worker thread while the
    caller goes on (hashlib lets go of the GIL on large buffers): the SHA-256 first, alone,
    since S3 is given it with the bytes, then each 8 MiB part's MD5, needed only once they are
    stored. (Beside the SHA-256 on a second thread, the MD5s slowed it down on two cores.)"""

    def __init__(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        self.size = len(view)
        parts = [view[start:start + PART_SIZE] for start in range(0, len(view), PART_SIZE)] or [view]
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checksums")
        self._sha256 = pool.submit(lambda: hashlib.sha256(view).hexdigest())
        self._part_md5s = [pool.submit(lambda part=part: hashlib.md5(part).digest()) for part in parts]
        pool.shutdown(wait=False)  # the threads end with their last checksum

    def sha256(self) -> str:
        return self._sha256.result()

    def result(self) -> Checksums:
        return Checksums(size=self.size, md5sum=etag_of([md5.result() for md5 in self._part_md5s]),
                         sha256=self.sha256())


class Computed:
    """Checksums already known, in the shape of `Checksumming`."""

    def __init__(self, result: Checksums) -> None:
        self.size = result.size
        self._result = result

    def sha256(self) -> str:
        return self._result.sha256

    def result(self) -> Checksums:
        return self._result


def begin(stream: IO[bytes]) -> Checksumming | Computed:
    """Checksums of a seekable stream: of a stream over memory (`getbuffer()`, as `io.BytesIO`
    has), started in the background; of any other, computed now."""
    if hasattr(stream, "getbuffer"):
        return Checksumming(stream.getbuffer())
    return Computed(of_stream(stream))


def of_stream(stream: IO[bytes]) -> Checksums:
    """Checksums of a seekable stream, read from its start; the stream is rewound afterwards.
    A stream over memory (`getbuffer()`, as `io.BytesIO` has) is hashed in place; otherwise the
    SHA-256 of each chunk read is computed on a second thread while this one computes its MD5."""
    if hasattr(stream, "getbuffer"):
        return Checksumming(stream.getbuffer()).result()
    hasher = Hasher()
    stream.seek(0)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as beside:
        while chunk := stream.read(READ_SIZE):
            sha256_done = beside.submit(hasher.update_sha256, chunk)
            hasher.update_md5s(chunk)
            sha256_done.result()
    stream.seek(0)
    return hasher.result()
