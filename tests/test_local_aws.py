"""What the local AWS stand-in adds to moto (devstack/moto_atomic.py) keeps DynamoDB's meaning:
a cancelled transaction leaves no trace, whatever it touched before the failing condition."""

import base64
import os

import pytest
from pynamodb.exceptions import TransactWriteError


def test_a_cancelled_transaction_undoes_every_item_it_touched(aws):
    from chalicelib.models import Delta
    from chalicelib.models.base import Transaction

    existing = Delta("p", "kept", seq="1", deltafile_id="f", client_id="c", created_by="a", content={"v": 1})
    existing.save()
    changed = Delta("p", "kept", seq="1", deltafile_id="f", client_id="c", created_by="a", content={"v": 2})
    new = Delta("p", "new", seq="2", deltafile_id="f", client_id="c", created_by="a", content={"v": 3})
    with pytest.raises(TransactWriteError), Transaction() as tx:
        tx.save(new)  # applied by moto before the failing condition below
        tx.save(changed, condition=Delta.id.does_not_exist())
    assert [d.id for d in Delta.query("p")] == ["kept"]
    assert Delta.get("p", "kept").content == {"v": 1}


PART = 5 * 1024 * 1024  # S3's smallest part but the last


@pytest.mark.parametrize("algorithm", [None, "CRC32", "CRC32C", "CRC64NVME", "SHA256"])
@pytest.mark.parametrize("checksum_type", [None, "FULL_OBJECT", "COMPOSITE"])
def test_a_multipart_checksum_is_the_one_moto_computes(algorithm, checksum_type):
    """devstack/moto_multipart.py runs full-object CRCs on from part to part instead of over a
    joined copy of the object; the value is moto's own, and other checksums are moto's as they are."""
    from moto.core import compat

    from devstack.moto_multipart import _MOTO_BUILDER, RunningCrcBuilder

    parts = [os.urandom(PART), os.urandom(PART), os.urandom(1234)]
    running, joined = RunningCrcBuilder(algorithm, checksum_type), _MOTO_BUILDER(algorithm, checksum_type)
    for part in parts:
        running.addPart(part)
        joined.addPart(part)
    assert running.build() == joined.build()
    if running._running:
        assert not running.complete_object  # no joined copy of the object
    if (algorithm, checksum_type) == (None, None) and not compat.HAS_CRT:
        assert running._running  # the API's uploads: moto's default CRC64NVME, CRC32 without awscrt


def test_a_completed_upload_keeps_its_full_object_crc(aws):
    """Through moto's S3 as the API uses it: the CRC32 of a FULL_OBJECT upload is the CRC32 of
    the whole object, and an upload that asked for no checksum completes as before."""
    import binascii

    from chalicelib import aws as clients
    from chalicelib.config import settings

    s3, data = clients.s3(), os.urandom(2 * PART + 10)
    for key, extra in (("crc", {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"}), ("plain", {})):
        upload_id = s3.create_multipart_upload(Bucket=settings.bucket, Key=key, **extra)["UploadId"]
        parts = []
        for number, start in enumerate(range(0, len(data), PART), start=1):
            answer = s3.upload_part(Bucket=settings.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                    Body=data[start:start + PART])
            parts.append({"PartNumber": number, "ETag": answer["ETag"],
                          **{k: v for k, v in answer.items() if k == "ChecksumCRC32"}})
        s3.complete_multipart_upload(Bucket=settings.bucket, Key=key, UploadId=upload_id,
                                     MultipartUpload={"Parts": parts})
        assert s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read() == data
    head = s3.head_object(Bucket=settings.bucket, Key="crc", ChecksumMode="ENABLED")
    expected = base64.b64encode(binascii.crc32(data).to_bytes(4, "big")).decode()
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (expected, "FULL_OBJECT")
