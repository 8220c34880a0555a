"""Makes moto complete a multipart upload without a second copy of the whole object.

S3 keeps a full-object CRC of every multipart upload: CRC64NVME when the upload asked for no
checksum (as the API's presigned uploads do), or the CRC asked for with checksum type FULL_OBJECT.
moto computes it by joining every part into one more in-memory copy of the object, beside the one
it stores, and checksumming that: for a 200 MiB upload, 0.3 s of CPU and 400 MiB of memory at
its peak that the composite checksums SDK uploads ask for (CRC32 per part) never cost. A CRC
runs on from part to part, so here each part extends a running CRC instead: the same value,
without the copy.

Only the CRCs moto computes with `binascii.crc32` are taken over: CRC32, and CRC64NVME and CRC32C
when moto falls back to CRC32 for want of `awscrt` or `crc32c`. Anything else (a composite
checksum, a CRC from those libraries) is left to moto as it is.

Used by the tests and by the local stack's AWS stand-in; AWS itself needs nothing of the kind.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util

import moto.s3.models
from moto.core import compat

_MOTO_BUILDER = moto.s3.models.MultipartChecksumBuilder


def _crc32_in_moto(algorithm: str) -> bool:
    """Whether moto computes a checksum of this algorithm with `binascii.crc32`."""
    if algorithm == "CRC32":
        return True
    if algorithm == "CRC64NVME":
        return not compat.HAS_CRT
    if algorithm == "CRC32C":
        return importlib.util.find_spec("crc32c") is None
    return False


class RunningCrcBuilder(_MOTO_BUILDER):
    """moto's checksum builder of a multipart upload, with a running CRC32 for full-object CRCs."""

    def __init__(self, checksum_algorithm: str | None, checksum_type: str | None) -> None:
        super().__init__(checksum_algorithm, checksum_type)
        self._running = self.checksum_type == "FULL_OBJECT" and _crc32_in_moto(self.checksum_algorithm)
        self._crc = 0

    def addPart(self, part: bytes) -> None:  # noqa: N802 (moto's name)
        if not self._running:
            super().addPart(part)
            return
        self._crc = binascii.crc32(part, self._crc)
        self.part_count += 1

    def build(self) -> tuple[str, str, int] | None:
        if not self._running:
            return super().build()
        return self.checksum_type, base64.b64encode(self._crc.to_bytes(4, "big")).decode(), 1


def complete_multipart_uploads_without_a_copy() -> None:
    moto.s3.models.MultipartChecksumBuilder = RunningCrcBuilder
