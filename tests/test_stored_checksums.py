"""Completing a presigned upload takes the parts' MD5s from S3's part ETags when they are MD5s
(checksums.StoredPartsHasher), and computes them otherwise: the result is the same either way."""

import hashlib
import os

import pytest

from chalicelib.rules.checksums import PART_SIZE, Hasher, StoredPartsHasher, of_chunks


def _feed(hasher: Hasher, data: bytes, chunk: int) -> Hasher:
    for start in range(0, len(data), chunk):
        hasher.update(data[start:start + chunk])
    return hasher


def _part_md5s(data: bytes) -> list[str]:
    return [f'"{hashlib.md5(data[i:i + PART_SIZE]).hexdigest()}"' for i in range(0, len(data), PART_SIZE)]


@pytest.mark.parametrize("size", [1, PART_SIZE, PART_SIZE + 1, 2 * PART_SIZE + 12345])
def test_md5_etags_give_the_checksums_of_the_bytes(size):
    data = os.urandom(size)
    hasher = _feed(StoredPartsHasher(_part_md5s(data)), data, 1024 * 1024 + 7)
    assert hasher.result() == of_chunks([data])


def test_etags_that_are_not_md5s_are_not_trusted():
    """Under SSE-KMS a part's ETag is not its MD5: every part is hashed then."""
    data = os.urandom(2 * PART_SIZE + 5)
    not_md5s = [f'"{os.urandom(16).hex()}"' for _ in range(3)]
    assert _feed(StoredPartsHasher(not_md5s), data, 1024 * 1024).result() == of_chunks([data])


def test_only_the_first_part_is_hashed_for_its_md5_when_the_etags_are_md5s():
    data = os.urandom(3 * PART_SIZE)
    hasher = _feed(StoredPartsHasher(_part_md5s(data)), data, PART_SIZE // 2)
    assert len(hasher._part_digests) == 1 and hasher._etags_are_md5s
    assert hasher.result().md5sum == of_chunks([data]).md5sum
