"""What the local AWS stand-in changes in moto keeps AWS's meaning: a cancelled transaction leaves
no trace, whatever it touched before the failing condition, a Query that reads only its partition
answers what moto's own answers (devstack/moto_atomic.py), and a multipart upload completed
without a joined copy keeps moto's checksum (devstack/moto_multipart.py)."""

import base64
import json
import os

import pytest
from pynamodb.exceptions import TransactWriteError


def test_a_cancelled_transaction_undoes_every_item_it_touched(aws):
    from chalicelib.models import Delta
    from chalicelib.models.base import Transaction

    def delta(delta_id: str, seq: str, value: int) -> Delta:
        return Delta("p", delta_id, seq=seq, deltafile_id="f", client_id="c", created_by="a",
                     content_json=f'{{"v": {value}}}')

    existing = delta("kept", "1", 1)
    existing.save()
    changed, new = delta("kept", "1", 2), delta("new", "2", 3)
    with pytest.raises(TransactWriteError), Transaction() as tx:
        tx.save(new)  # applied by moto before the failing condition below
        tx.save(changed, condition=Delta.id.does_not_exist())
    assert [d.id for d in Delta.query("p")] == ["kept"]
    assert Delta.get("p", "kept").content == {"v": 1}


def test_a_query_answers_as_moto_does_while_reading_only_its_partition():
    """Random tables and Queries (key conditions, indexes with and without a range key, limits,
    both directions, filters, counts, items near the 1 MB page size), with writes in between, each
    paged to its end with moto's own Query and with the stand-in's: the same pages."""
    import random

    import boto3
    from moto import mock_aws
    from moto.dynamodb.models.table import Table

    def key(name: str, kind: str = "HASH") -> dict:
        return {"AttributeName": name, "KeyType": kind}

    partition_scoped = Table.query  # as conftest patched it
    assert getattr(partition_scoped, "__qfc_partition__", False)
    motos_own = partition_scoped.__wrapped__
    rng = random.Random(7)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("p", "r", "g", "s")],
            KeySchema=[key("p"), key("r", "RANGE")],
            GlobalSecondaryIndexes=[
                {"IndexName": "by-g-s", "Projection": {"ProjectionType": "ALL"},
                 "KeySchema": [key("g"), key("s", "RANGE")]},
                {"IndexName": "by-g", "Projection": {"ProjectionType": "KEYS_ONLY"}, "KeySchema": [key("g")]},
            ])
        for number in range(300):
            item = {"p": {"S": rng.choice("abc")}, "n": {"N": str(number)},
                    "r": {"S": "".join(rng.choice("xyzé日") for _ in range(rng.randint(1, 4)))}}
            if rng.random() < 0.8:
                item["g"] = {"S": rng.choice("gh")}
            if rng.random() < 0.8:
                item["s"] = {"S": rng.choice(["1", "2", "3", "10"])}
            if rng.random() < 0.1:
                item["big"] = {"S": "z" * 60_000}
            client.put_item(TableName="t", Item=item)

        def pages(arguments: dict) -> list:
            found, start = [], None
            while True:
                reply = client.query(**arguments, **({"ExclusiveStartKey": start} if start else {}))
                found.append((reply.get("Items"), reply["Count"], reply.get("LastEvaluatedKey")))
                start = reply.get("LastEvaluatedKey")
                if not start:
                    return found

        def change_something() -> None:
            """A write between Queries: sorted partitions kept from before must not serve."""
            choice = rng.random()
            key = {"p": {"S": rng.choice("abc")}, "r": {"S": rng.choice(["x", "y", "zz", "é"])}}
            if choice < 0.4:
                client.put_item(TableName="t", Item={**key, "g": {"S": rng.choice("gh")}, "s": {"S": "2"},
                                                     "n": {"N": "1"}})
            elif choice < 0.7:
                client.update_item(TableName="t", Key=key, UpdateExpression="SET g = :g, s = :s",
                                   ExpressionAttributeValues={":g": {"S": rng.choice("gh")},
                                                              ":s": {"S": rng.choice(["1", "3"])}})
            else:
                client.delete_item(TableName="t", Key=key)

        for _ in range(120):
            if rng.random() < 0.3:
                change_something()
            values = {}
            if rng.random() < 0.5:
                arguments = {"KeyConditionExpression": "p = :p"}
                values[":p"] = {"S": rng.choice("abcd")}
                if rng.random() < 0.4:
                    arguments["KeyConditionExpression"] += " AND begins_with(r, :b)"
                    values[":b"] = {"S": rng.choice("xyzé")}
            else:
                arguments = {"IndexName": rng.choice(["by-g-s", "by-g"]), "KeyConditionExpression": "g = :g"}
                values[":g"] = {"S": rng.choice("gh")}
                if arguments["IndexName"] == "by-g-s" and rng.random() < 0.4:
                    arguments["KeyConditionExpression"] += " AND s > :s"
                    values[":s"] = {"S": "1"}
            if rng.random() < 0.6:
                arguments["Limit"] = rng.randint(1, 80)
            if rng.random() < 0.4:
                arguments["ScanIndexForward"] = False
            if rng.random() < 0.2:
                arguments["Select"] = "COUNT"
            if rng.random() < 0.2:
                arguments["FilterExpression"] = "n > :n"
                values[":n"] = {"N": "200"}
            arguments.update(TableName="t", ExpressionAttributeValues=values)
            Table.query = motos_own
            try:
                expected = pages(arguments)
            finally:
                Table.query = partition_scoped
            assert pages(arguments) == expected, arguments


def _item_operations(client) -> list:
    """Every item operation the shortcut serves, on items of every attribute type, with what
    each can return (old and new values, capacity, collection metrics, unprocessed keys,
    counts, pages): each call's answer as botocore parses it, and its raw body."""
    item = {
        "p": {"S": "a"}, "r": {"S": "é日\u2028x"}, "n": {"N": "12345678901234567890.5"},
        "neg": {"N": "-0.000001"}, "ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1", "2.5"]}, "t": {"BOOL": True},
        "nul": {"NULL": True}, "l": {"L": [{"S": "in"}, {"N": "3"}, {"M": {"k": {"S": "v"}}}]},
        "m": {"M": {"deep": {"M": {"list": {"L": [{"BOOL": False}]}}}}}, "blank": {"S": ""},
    }
    key = {"p": {"S": "a"}, "r": {"S": "é日\u2028x"}}
    calls = [
        ("put_item", {"TableName": "t", "Item": item, "ReturnConsumedCapacity": "TOTAL",
                      "ReturnItemCollectionMetrics": "SIZE"}),
        ("put_item", {"TableName": "t", "Item": {**item, "n": {"N": "2"}}, "ReturnValues": "ALL_OLD"}),
        ("get_item", {"TableName": "t", "Key": key, "ConsistentRead": True}),
        ("get_item", {"TableName": "t", "Key": key, "ProjectionExpression": "m.deep, ss, t"}),
        # Binary values: moto's result holds bytes, which the shortcut leaves to moto's serialiser.
        ("put_item", {"TableName": "t", "Item": {"p": {"S": "bin"}, "r": {"S": "1"}, "b": {"B": b"\x00\xff"},
                                                 "bs": {"BS": [b"\x01", b"\x02"]}}}),
        ("get_item", {"TableName": "t", "Key": {"p": {"S": "bin"}, "r": {"S": "1"}}}),
        ("get_item", {"TableName": "t", "Key": {"p": {"S": "none"}, "r": {"S": "x"}}}),
        ("update_item", {"TableName": "t", "Key": key, "ReturnValues": "ALL_NEW",
                         "UpdateExpression": "SET n = n + :one, l[0] = :s ADD ns :ns REMOVE nul",
                         "ExpressionAttributeValues": {":one": {"N": "1"}, ":s": {"S": "out"},
                                                       ":ns": {"NS": ["7"]}}}),
        ("update_item", {"TableName": "t", "Key": key, "ReturnValues": "UPDATED_OLD",
                         "UpdateExpression": "SET t = :f",
                         "ExpressionAttributeValues": {":f": {"BOOL": False}}}),
        ("update_item", {"TableName": "t", "Key": key, "UpdateExpression": "SET blank = :e",
                         "ExpressionAttributeValues": {":e": {"S": "now"}}}),
        ("batch_write_item", {"RequestItems": {"t": [
            {"PutRequest": {"Item": {**item, "r": {"S": f"r{n:03d}"}}}} for n in range(20)]},
            "ReturnConsumedCapacity": "INDEXES"}),
        ("batch_get_item", {"RequestItems": {"t": {"Keys": [{"p": {"S": "a"}, "r": {"S": f"r{n:03d}"}}
                                                            for n in range(0, 20, 3)]}}}),
        ("query", {"TableName": "t", "KeyConditionExpression": "p = :p", "Limit": 7,
                   "ExpressionAttributeValues": {":p": {"S": "a"}}, "ReturnConsumedCapacity": "TOTAL"}),
        ("query", {"TableName": "t", "KeyConditionExpression": "p = :p", "Select": "COUNT",
                   "ExpressionAttributeValues": {":p": {"S": "a"}}}),
        ("query", {"TableName": "t", "KeyConditionExpression": "p = :p AND r > :r", "ScanIndexForward": False,
                   "FilterExpression": "t = :t", "ExpressionAttributeValues": {
                       ":p": {"S": "a"}, ":r": {"S": "r010"}, ":t": {"BOOL": True}}}),
        ("transact_get_items", {"TransactItems": [{"Get": {"TableName": "t", "Key": key}},
                                                  {"Get": {"TableName": "t", "Key": {"p": {"S": "a"},
                                                                                     "r": {"S": "r001"}}}}]}),
        ("transact_write_items", {"TransactItems": [
            {"Put": {"TableName": "t", "Item": {**item, "r": {"S": "tx"}}}},
            {"Update": {"TableName": "t", "Key": key, "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "9"}}}}],
            "ReturnConsumedCapacity": "TOTAL"}),
        ("delete_item", {"TableName": "t", "Key": key, "ReturnValues": "ALL_OLD"}),
        ("delete_item", {"TableName": "t", "Key": key}),
    ]
    bodies = []
    client.meta.events.register("after-call.dynamodb.*",
                                lambda http_response, **kwargs: bodies.append(http_response.content))
    answers = []
    for operation, arguments in calls:
        reply = getattr(client, operation)(**arguments)
        reply.pop("ResponseMetadata")
        answers.append((operation, reply, json.loads(bodies[-1])))
    return answers


def test_item_answers_dumped_directly_are_the_answers_moto_serialises():
    """The stand-in answers DynamoDB's item operations by dumping moto's result as JSON (fast on
    large pages); moto's own serialisation must give the same answers, to botocore and byte
    for byte once parsed, for every attribute type and every optional part of an answer."""
    import boto3
    from moto import mock_aws
    from moto.core.responses import ActionResult

    from devstack.moto_atomic import _dumped_directly

    shortcut = ActionResult.execute_result  # as conftest patched it
    assert getattr(shortcut, "__qfc_direct__", False)
    motos_own = shortcut.__wrapped__
    served_by_moto = []

    def counted(self, context):
        served_by_moto.append(context.operation_model.name)
        return motos_own(self, context)

    answers = {}
    for name, execute_result in (("moto's own", motos_own), ("dumped directly", _dumped_directly(counted))):
        ActionResult.execute_result = execute_result
        try:
            with mock_aws():
                client = boto3.client("dynamodb", region_name="us-east-1")
                client.create_table(
                    TableName="t", BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("p", "r")],
                    KeySchema=[{"AttributeName": "p", "KeyType": "HASH"},
                               {"AttributeName": "r", "KeyType": "RANGE"}])
                answers[name] = _item_operations(client)
        finally:
            ActionResult.execute_result = shortcut
    for mine, motos in zip(answers["dumped directly"], answers["moto's own"], strict=True):
        assert mine == motos
    assert served_by_moto == ["CreateTable", "GetItem"]  # the shortcut answered all the others


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

    from chalicelib.adapters import aws as clients
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
