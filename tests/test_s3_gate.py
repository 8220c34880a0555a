"""The gate in front of the local S3 stand-in: from the network, only requests with a valid,
unexpired presigned signature reach moto (checked with botocore's own signer)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

SECRET = "a-random-secret-of-this-start"
BUCKET = "qfc-files"


def _client(endpoint: str, secret: str = SECRET):
    return boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint,
                        aws_access_key_id="local", aws_secret_access_key=secret,
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def _check(url: str, method: str = "GET", secret: str = SECRET, now: datetime | None = None,
           host: str | None = None) -> bool:
    from devstack.s3_gate import presigned_signature_is_valid

    split = urlsplit(url)
    return presigned_signature_is_valid(method, host or split.netloc, split.path, split.query,
                                        {"Host": host or split.netloc}, "local", secret, now)


PUBLIC = "http://192.0.2.10:5000"


def _get_url(**params) -> str:
    return _client(PUBLIC).generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "projects/p/files/DCIM/é 1.jpg", **params},
        ExpiresIn=600)


def test_urls_presigned_by_the_api_pass():
    assert _check(_get_url())
    assert _check(_get_url(VersionId="abc", ResponseContentDisposition="attachment; filename*=UTF-8''%C3%A9"))
    part = _client(PUBLIC).generate_presigned_url(
        "upload_part", Params={"Bucket": BUCKET, "Key": "a b", "UploadId": "u1", "PartNumber": 3},
        ExpiresIn=600)
    assert _check(part, "PUT")


def test_anything_altered_or_unsigned_fails():
    url = _get_url()
    assert not _check(url, secret="local")  # the well-known default secret signs nothing here
    assert not _check(url, method="PUT")
    assert not _check(url, host="192.0.2.11:5000")
    assert not _check(url.replace("DCIM", "DCIN"))
    assert not _check(url + "&versionId=other")
    assert not _check(url.replace("X-Amz-Expires=600", "X-Amz-Expires=6000"))
    assert not _check(url.split("?")[0])
    assert not _check(f"{PUBLIC}/{BUCKET}?list-type=2")
    signature = url.split("X-Amz-Signature=")[1]
    assert not _check(url.replace(signature, "0" * len(signature)))


def test_expired_and_future_urls_fail():
    url = _get_url()
    assert not _check(url, now=datetime.now(UTC) + timedelta(seconds=601))
    assert not _check(url, now=datetime.now(UTC) - timedelta(hours=1))


@pytest.fixture(scope="module")
def moto_upstream():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = _client(f"http://127.0.0.1:{port}")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="projects/p/files/a.txt", Body=b"secret bytes")
    yield port
    server.stop()


def _through_gate(port: int, method: str, url: str, body: bytes = b"", remote: str = "192.0.2.50"):
    """Call the gate's WSGI application as waitress would for a client at `remote`."""
    from devstack.s3_gate import gate_application

    split = urlsplit(url)
    environ = {
        "REQUEST_METHOD": method, "REQUEST_URI": split.path + (f"?{split.query}" if split.query else ""),
        "HTTP_HOST": split.netloc, "REMOTE_ADDR": remote, "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

    content = b"".join(gate_application("127.0.0.1", port, "local", SECRET)(environ, start_response))
    return answer["status"], content


def test_the_gate_passes_presigned_requests_to_moto_and_refuses_the_rest(moto_upstream):
    s3 = _client(PUBLIC)
    get = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "projects/p/files/a.txt"},
                                    ExpiresIn=60)
    assert _through_gate(moto_upstream, "GET", get) == (200, b"secret bytes")
    put = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "projects/p/files/b.txt"},
                                    ExpiresIn=60)
    assert _through_gate(moto_upstream, "PUT", put, b"new bytes")[0] == 200
    for method, url in [("GET", f"{PUBLIC}/{BUCKET}?list-type=2"), ("GET", f"{PUBLIC}/"),
                        ("PUT", f"{PUBLIC}/{BUCKET}/projects/p/files/c.txt"),
                        ("DELETE", f"{PUBLIC}/{BUCKET}/projects/p/files/a.txt"),
                        ("PUT", put.replace("b.txt", "c.txt")), ("DELETE", get)]:
        status, content = _through_gate(moto_upstream, method, url, b"x")
        assert status == 403 and b"AccessDenied" in content, (method, url)
    upstream = _client(f"http://127.0.0.1:{moto_upstream}")
    keys = sorted(o["Key"] for o in upstream.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == ["projects/p/files/a.txt", "projects/p/files/b.txt"]
