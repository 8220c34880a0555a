"""The AWS stand-in's state on disk (devstack/aws_state.py): what it held comes back after a
restart, exactly (items, object versions and their ids and bytes, delete markers, a multipart
upload in progress), large bodies are files and never base64 in JSON, and each start compacts
the journal into a snapshot holding only what is still there; and its request ids still reach
the bodies that carry one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import requests

from tests.e2e.stack import ROOT, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

BUCKET = "state-test"


class StandIn:
    def __init__(self, state: Path, legacy: Path | None = None):
        self.state, self.legacy, self.port, self.process = state, legacy, free_port(), None

    def start(self) -> None:
        env = {**os.environ, "QFC_AWS_STATE_DIR": str(self.state), "AWS_ACCESS_KEY_ID": "local",
               **({"QFC_AWS_LEGACY_RECORDING": str(self.legacy)} if self.legacy else {}),
               "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1",
               "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(256 * 1024)}
        with open(self.state.parent / "standin.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devstack.aws_standin", "-H", "127.0.0.1", "-p", str(self.port)],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        def answers() -> bool:
            assert self.process.poll() is None, (self.state.parent / "standin.log").read_text()[-3000:]
            try:
                requests.get(f"http://127.0.0.1:{self.port}/moto-api/", timeout=10)
            except requests.ConnectionError:
                return False
            return True

        wait_until(answers, "the AWS stand-in did not answer", interval=0.1)
        requests.post(f"http://127.0.0.1:{self.port}/moto-api/seed?a={time.time_ns() % 2**31}",
                      timeout=10).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def client(self, service: str):
        return boto3.client(service, endpoint_url=f"http://127.0.0.1:{self.port}", region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key="local")


def _everything(stand_in: StandIn) -> dict:
    dynamodb, s3 = stand_in.client("dynamodb"), stand_in.client("s3")
    items = sorted(json.dumps(item, sort_keys=True, default=bytes.hex)
                   for item in dynamodb.scan(TableName="t")["Items"])
    listing = s3.list_object_versions(Bucket=BUCKET)
    versions = [(v["Key"], v["VersionId"], v["IsLatest"], v["ETag"], v["Size"]) for v in listing["Versions"]]
    markers = [(m["Key"], m["VersionId"], m["IsLatest"]) for m in listing.get("DeleteMarkers", [])]
    contents = {(v[0], v[1]): s3.get_object(Bucket=BUCKET, Key=v[0], VersionId=v[1])["Body"].read()
                for v in versions}
    uploads = [(u["Key"], u["UploadId"]) for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]
    parts = {u[1]: [(p["PartNumber"], p["ETag"], p["Size"]) for p in s3.list_parts(
        Bucket=BUCKET, Key=u[0], UploadId=u[1]).get("Parts", [])] for u in uploads}
    ttl = dynamodb.describe_time_to_live(TableName="t")["TimeToLiveDescription"]
    table = dynamodb.describe_table(TableName="t")["Table"]
    indexes = [index["IndexName"] for index in table["GlobalSecondaryIndexes"]]
    versioning = s3.get_bucket_versioning(Bucket=BUCKET)["Status"]
    return {"items": items, "versions": versions, "markers": markers, "contents": contents,
            "uploads": uploads, "parts": parts, "ttl": ttl, "indexes": indexes, "versioning": versioning}


def _disk(state: Path) -> dict[str, int]:
    return {"bodies": sum(1 for _ in (state / "bodies").iterdir()),
            "json_bytes": sum(p.stat().st_size for p in state.glob("*.jsonl"))}


def test_the_state_comes_back_exactly_and_is_compacted(tmp_path):
    state = tmp_path / "aws-state"
    stand_in = StandIn(state)
    stand_in.start()
    big, other = os.urandom(3 * 1024 * 1024), os.urandom(200 * 1024)
    try:
        dynamodb, s3 = stand_in.client("dynamodb"), stand_in.client("s3")
        dynamodb.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("p", "r", "g")],
            KeySchema=[{"AttributeName": "p", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{"IndexName": "by-g", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}]}])
        dynamodb.update_time_to_live(TableName="t", TimeToLiveSpecification={"Enabled": True,
                                                                                "AttributeName": "expires"})
        for number in range(50):
            item = {"p": {"S": "a"}, "r": {"S": f"{number:03d}"}, "g": {"S": "x"}, "n": {"N": str(number)},
                    "l": {"L": [{"M": {"k": {"B": b"\0"}}}]}}
            dynamodb.put_item(TableName="t", Item=item)
        dynamodb.transact_write_items(TransactItems=[
            {"Update": {"TableName": "t", "Key": {"p": {"S": "a"}, "r": {"S": "001"}},
                        "UpdateExpression": "SET n = :n", "ExpressionAttributeValues": {":n": {"N": "100"}}}},
            {"Delete": {"TableName": "t", "Key": {"p": {"S": "a"}, "r": {"S": "002"}}}}])
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=BUCKET, Key="big.bin", Body=big, ContentType="application/x-test")
        s3.put_object(Bucket=BUCKET, Key="big.bin", Body=other)
        s3.put_object(Bucket=BUCKET, Key="small é.txt", Body=b"small")
        gone = s3.put_object(Bucket=BUCKET, Key="gone.bin", Body=os.urandom(300 * 1024))["VersionId"]
        s3.delete_object(Bucket=BUCKET, Key="gone.bin", VersionId=gone)
        s3.put_object(Bucket=BUCKET, Key="hidden.txt", Body=b"hidden")
        s3.delete_object(Bucket=BUCKET, Key="hidden.txt")  # a delete marker
        upload = s3.create_multipart_upload(Bucket=BUCKET, Key="parts.bin")["UploadId"]
        first_part = os.urandom(5 * 1024 * 1024)
        s3.upload_part(Bucket=BUCKET, Key="parts.bin", UploadId=upload, PartNumber=1, Body=first_part)
        before = _everything(stand_in)
        journal = next(state.glob("journal-*.jsonl")).read_text()
        assert len(journal) < 200_000  # the megabytes went into body files
    finally:
        stand_in.stop()

    stand_in.start()
    try:
        assert _everything(stand_in) == before
        restored = json.loads((state / "restored.json").read_text())
        assert restored["compacted"] and restored["items"] == 49 and restored["tables"] == 1
        assert restored["journal_entries"] > 60
        assert _disk(state)["bodies"] == 3  # big.bin twice and the part; nothing of gone.bin
        s3 = stand_in.client("s3")
        second_part = os.urandom(1024)
        s3.upload_part(Bucket=BUCKET, Key="parts.bin", UploadId=upload, PartNumber=2, Body=second_part)
        parts = s3.list_parts(Bucket=BUCKET, Key="parts.bin", UploadId=upload)["Parts"]
        s3.complete_multipart_upload(Bucket=BUCKET, Key="parts.bin", UploadId=upload, MultipartUpload={
            "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]})
        s3.delete_object(Bucket=BUCKET, Key="big.bin", VersionId=before["versions"][0][1]
                         if before["versions"][0][0] == "big.bin" else before["versions"][1][1])
        after = _everything(stand_in)
    finally:
        stand_in.stop()

    stand_in.start()
    try:
        assert _everything(stand_in) == after
        completed = next(key for key in after["contents"] if key[0] == "parts.bin")
        assert after["contents"][completed] == first_part + second_part
        restored = json.loads((state / "restored.json").read_text())
        assert restored["items"] == 49 and restored["versions"] == len(after["versions"])
        assert not any(state.glob("*.incoming")) and len(list(state.glob("journal-*.jsonl"))) <= 1
    finally:
        stand_in.stop()


def test_a_recording_of_an_older_version_is_replayed_once_and_becomes_a_snapshot(tmp_path):
    """moto's own recording format (bodies inline, base64), as older versions kept it."""
    first = StandIn(tmp_path / "first")
    first.start()
    try:
        s3 = first.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        versions = [s3.put_object(Bucket=BUCKET, Key="a.txt", Body=body)["VersionId"]
                    for body in (b"1", b"22")]
    finally:
        first.stop()
    legacy = tmp_path / "moto-recording.jsonl"
    next((tmp_path / "first").glob("journal-*.jsonl")).rename(legacy)
    assert "body_file" not in legacy.read_text()

    migrated = StandIn(tmp_path / "aws-state", legacy=legacy)
    migrated.start()
    try:
        s3 = migrated.client("s3")
        listed = s3.list_object_versions(Bucket=BUCKET)["Versions"]
        assert sorted(v["VersionId"] for v in listed) == sorted(versions)
        assert s3.get_object(Bucket=BUCKET, Key="a.txt", VersionId=versions[0])["Body"].read() == b"1"
        assert not legacy.exists() and (tmp_path / "aws-state" / "snapshot.jsonl").exists()
    finally:
        migrated.stop()


def test_request_ids_are_stamped_into_xml_bodies_and_headers(tmp_path):
    """The stand-in stamps moto's request id only where a body holds `<RequestId>`: an S3 error
    still carries the one its headers carry, and JSON answers are as moto makes them."""
    stand_in = StandIn(tmp_path / "state")
    stand_in.start()
    try:
        url = f"http://127.0.0.1:{stand_in.port}"
        stand_in.client("sqs").create_queue(QueueName="q")  # SQS answers in XML here, with a RequestId
        signed_for_sqs = "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/sqs/aws4_request"
        reply = requests.post(url, data={"Action": "GetQueueUrl", "QueueName": "missing",
                                         "Version": "2012-11-05"},
                              headers={"Authorization": signed_for_sqs}, timeout=10)
        request_id = reply.headers["x-amzn-RequestId"]
        assert f"<RequestId>{request_id}</RequestId>" in reply.text, reply.text
        dynamodb = stand_in.client("dynamodb")
        answer = dynamodb.list_tables()
        assert answer["ResponseMetadata"]["RequestId"] and answer["TableNames"] == []
    finally:
        stand_in.stop()
