"""The two checksums of every stored file.

`md5sum` is the S3-style ETag with 8 MiB parts, the value both official clients compute locally
to skip unchanged files: the plain MD5 hex up to 8 MiB, otherwise the MD5 of the concatenated
binary MD5s of the parts, followed by `-<number of parts>`. `sha256` is the SHA-256 of the bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
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
        self._sha256.update(data)
        self._size += len(data)
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
        self._etags = [etag.strip('"').lower() for etag in part_etags]
        self._etags_are_md5s: bool | None = None

    def update(self, data: bytes) -> None:
        if self._etags_are_md5s:
            self._sha256.update(data)
            self._size += len(data)
            return
        super().update(data)
        if self._etags_are_md5s is None and self._part_digests:
            self._etags_are_md5s = self._part_digests[0].hex() == self._etags[0]

    def result(self) -> Checksums:
        if not self._etags_are_md5s:
            return super().result()
        return Checksums(size=self._size, md5sum=etag_of([bytes.fromhex(etag) for etag in self._etags]),
                         sha256=self._sha256.hexdigest())


def of_chunks(chunks: Iterable[bytes]) -> Checksums:
    hasher = Hasher()
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.result()


def of_stream(stream: IO[bytes]) -> Checksums:
    """Checksums of a seekable stream, read from its start; the stream is rewound afterwards."""
    stream.seek(0)
    result = of_chunks(iter(lambda: stream.read(READ_SIZE), b""))
    stream.seek(0)
    return result
