"""The S3-style ETag must equal what the official clients compute locally (the SDK's calc_etag)."""

import hashlib
import io

import pytest
from qfieldcloud_sdk.utils import calc_etag

from chalicelib.rules import checksums

MIB = 1024 * 1024


def test_known_values_from_qfieldcloud():
    assert checksums.of_chunks([b"Hello!"]).md5sum == "952d2c56d0485958336747bcdd98590d"
    assert checksums.of_chunks([b"Hello!"]).sha256 == (
        "334d016f755cd6dc58c53a86e183882f8ec14f52fb05345887c8a5edd42c87b7")
    assert checksums.of_chunks([b"x" * 10_000_000]).md5sum == "1e762c1c6ca960a51ce95942752cf1f6-2"


@pytest.mark.parametrize("size", [0, 1, 8 * MIB - 1, 8 * MIB, 8 * MIB + 1, 16 * MIB, 20 * MIB + 3])
def test_etag_matches_the_sdk_for_sizes_around_part_boundaries(tmp_path, size):
    data = (hashlib.sha256(str(size).encode()).digest() * (size // 32 + 1))[:size]
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    in_memory = checksums.of_stream(io.BytesIO(data))  # hashed in place, parts side by side
    with path.open("rb") as read:
        from_disk = checksums.of_stream(read)  # read in chunks
    for result in (in_memory, from_disk):
        assert result.md5sum == calc_etag(str(path))
        assert result.sha256 == hashlib.sha256(data).hexdigest()
        assert result.size == size


def test_chunking_does_not_matter():
    data = bytes(range(256)) * (70 * 1024)  # 17.5 MiB
    whole = checksums.of_chunks([data])
    pieces = checksums.of_chunks(data[i:i + 777_777] for i in range(0, len(data), 777_777))
    assert whole == pieces and whole.md5sum.endswith("-3")
