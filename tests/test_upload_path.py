"""A direct upload's body goes through the API without needless copies: the gateway puts it in the
event base64-encoded (as API Gateway does); the multipart parser reads the body as received and
each part is a view of it, not a copy; the stored bytes and checksums are exact, whether the
event body is a str (Lambda) or bytes (the local gateway). S3 receives the SHA-256 with the
bytes, and keeps it. (Larger bodies take the large-request path: tests/test_large_requests.py.)"""

from __future__ import annotations

import base64
import hashlib
import io
import os

import pytest
import requests

from tests.files_helpers import upload

BIG = 9 * 1024 * 1024 + 123  # more than two decoding steps, more than the 8 MiB ETag part
LAMBDA_SIZED = 4 * 1000 * 1000  # what API Gateway passes on to the function (4.4 MB at most)


@pytest.fixture
def no_whole_body(monkeypatch):
    """Chalice's `raw_body` decodes the whole body at once: a multipart upload must not need it."""
    from chalice.app import Request

    def refused(self):
        raise AssertionError("the multipart body was decoded whole")

    monkeypatch.setattr(Request, "raw_body", property(refused))


def _stored(alice, pid: str, name: str) -> bytes:
    reply = alice.get(f"files/{pid}/{name}/")
    assert reply.status == 302
    return requests.get(reply.headers["Location"], timeout=60).content


def test_a_large_upload_is_stored_exactly_with_its_checksums(alice, pid, no_whole_body):
    content = os.urandom(BIG)
    reply = upload(alice, pid, "big.bin", content)
    assert reply.status == 201, reply.content
    assert reply.json()["sha256"] == hashlib.sha256(content).hexdigest()
    parts = [hashlib.md5(content[i:i + 8 * 1024 * 1024]).digest() for i in range(0, BIG, 8 * 1024 * 1024)]
    assert reply.json()["md5sum"] == f"{hashlib.md5(b''.join(parts)).hexdigest()}-2"
    assert _stored(alice, pid, "big.bin") == content


def _event_for(api, pid: str, content: bytes) -> dict:
    prepared = requests.Request("POST", f"http://testserver/api/v1/files/{pid}/lambda.bin/",
                                files={"file": ("f", content)}).prepare()
    headers = [*prepared.headers.items(), ("Authorization", f"Token {api.token}"), ("Host", "testserver")]
    gateway = api.gateway
    resource, params = gateway._match(f"/api/v1/files/{pid}/lambda.bin/")
    from urllib.parse import urlsplit

    return gateway._event("POST", urlsplit(f"/api/v1/files/{pid}/lambda.bin/"), headers, prepared.body,
                          resource, params, "127.0.0.1")


def test_a_body_is_put_in_the_event_base64_encoded(alice, pid):
    event = _event_for(alice, pid, b"x" * 1000)
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]).count(b"x" * 1000) == 1


def test_s3_is_given_the_sha256_of_a_direct_upload_and_keeps_it(alice, pid):
    from chalicelib.adapters import aws
    from chalicelib.adapters.storage import file_key
    from chalicelib.config import settings

    for name, content in (("small.txt", b"field notes"), ("big.bin", os.urandom(LAMBDA_SIZED))):
        assert upload(alice, pid, name, content).status == 201
        head = aws.s3().head_object(Bucket=settings.bucket, Key=file_key(pid, name), ChecksumMode="ENABLED")
        assert base64.b64decode(head["ChecksumSHA256"]) == hashlib.sha256(content).digest()


def test_an_event_body_of_str_as_lambda_receives_it_is_read_the_same(alice, pid, no_whole_body):
    content = os.urandom(LAMBDA_SIZED)
    event = _event_for(alice, pid, content)
    assert event["isBase64Encoded"] and isinstance(event["body"], bytes)
    event["body"] = event["body"].decode("ascii")  # what the Lambda runtime hands over
    from devstack.gateway import _LambdaContext

    result = alice.gateway.handler(event, _LambdaContext())
    assert result["statusCode"] == 201, result["body"]
    assert _stored(alice, pid, "lambda.bin") == content


def test_the_gateway_takes_a_body_to_read(alice, pid):
    content = b"streamed " * 1000
    prepared = requests.Request("POST", "http://testserver/", files={"file": ("f", content)}).prepare()
    headers = [*prepared.headers.items(), ("Authorization", f"Token {alice.token}"), ("Host", "testserver")]
    response = alice.front.handle("POST", f"/api/v1/files/{pid}/s.txt/", headers, io.BytesIO(prepared.body))
    assert response.status == 201
    assert _stored(alice, pid, "s.txt") == content


def test_a_body_that_is_not_base64_is_a_400(alice, pid):
    event = _event_for(alice, pid, b"x")
    event["body"] = base64.b64encode(b"x").decode() + "!not base64!"
    from devstack.gateway import _LambdaContext

    result = alice.gateway.handler(event, _LambdaContext())
    assert result["statusCode"] == 400


def test_the_parts_of_a_large_body_are_views_of_it_not_copies(alice, pid):
    import tracemalloc

    from chalice.app import Request

    from chalicelib.http.request_data import multipart

    content = os.urandom(LAMBDA_SIZED)
    request = Request(_event_for(alice, pid, content))
    tracemalloc.start()
    try:
        part = multipart(request).single("file")
        allocated = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert part.size == LAMBDA_SIZED and part.stream.read() == content
    # The body decoded from the event's base64 once; the file part is a view of it.
    assert allocated < LAMBDA_SIZED + 1024 * 1024, f"{allocated} bytes for a {LAMBDA_SIZED}-byte body"


def test_a_part_in_base64_transfer_encoding_is_stored_decoded(alice, pid):
    content = os.urandom(3000)
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n").encode() + base64.encodebytes(content) + (
        f"\r\n--{boundary}--\r\n").encode()
    headers = [("Content-Type", f"multipart/form-data; boundary={boundary}"),
               ("Authorization", f"Token {alice.token}"), ("Host", "testserver")]
    response = alice.gateway.handle("POST", f"/api/v1/files/{pid}/b64.bin/", headers, body)
    assert response.status == 201, response.body
    assert _stored(alice, pid, "b64.bin") == content
