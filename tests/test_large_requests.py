"""The large-request path: a file upload too large for API Gateway and Lambda goes, by the edge's
rule, to the large-request service, which stores it as it arrives with the API's rules and
answer; anything that stops it on the way leaves nothing stored."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import threading

import pytest
import requests

from chalicelib.http import limits
from chalicelib.rules.checksums import PART_SIZE
from tests.files_helpers import everything, follow, upload

PHOTO = 12 * 1000 * 1000


def s3_etag(pid: str, name: str) -> str:
    from chalicelib.adapters import aws, storage
    from chalicelib.config import settings

    return aws.s3().head_object(Bucket=settings.bucket, Key=storage.file_key(pid, name))["ETag"].strip('"')


def qfield_body(content: bytes, boundary: str = "qfieldboundary") -> tuple[bytes, dict[str, str]]:
    """What QField sends: a JSON `text` part, then `file` named by its device path."""
    text = json.dumps({"project": "x"}).encode()
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n").encode() + text + (
        f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
        f"filename=\"/storage/emulated/0/DCIM/photo.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() \
        + content + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_the_edge_rule_sends_only_large_file_uploads_to_the_service():
    upload_path = "/api/v1/files/3f0b6f0e-0000-4000-8000-000000000000/DCIM/a%20b.jpg/"
    above, below = str(limits.LARGE_BODY_BYTES + 1), str(limits.LARGE_BODY_BYTES)
    assert limits.takes_large_path("POST", upload_path, above, False)
    assert limits.takes_large_path("POST", upload_path, None, True)  # chunked: length unknown
    assert not limits.takes_large_path("POST", upload_path, below, False)
    assert not limits.takes_large_path("GET", upload_path, above, False)
    assert not limits.takes_large_path("DELETE", upload_path, above, False)
    for path in ("/api/v1/deltas/3f0b6f0e-0000-4000-8000-000000000000/",
                 "/api/v1/files/metadata/3f0b6f0e-0000-4000-8000-000000000000/a.jpg/",
                 "/api/v1/files/thumbnails/3f0b6f0e-0000-4000-8000-000000000000/",
                 "/api/v1/files/3f0b6f0e-0000-4000-8000-000000000000/",
                 "/api/v1/projects/3f0b6f0e-0000-4000-8000-000000000000/thumbnail/"):
        assert not limits.takes_large_path("POST", path, above, False), path


def test_a_qfield_photo_of_12_mb_is_stored_with_its_checksums_and_s3_etag(alice, pid):
    content = os.urandom(PHOTO)
    body, headers = qfield_body(content)
    reply = alice.post(f"files/{pid}/DCIM/photo.jpg/", raw_body=body, headers=headers)
    assert reply.status == 201, reply.content
    stored = reply.json()
    parts = [hashlib.md5(content[i:i + PART_SIZE]).digest() for i in range(0, PHOTO, PART_SIZE)]
    etag = f"{hashlib.md5(b''.join(parts)).hexdigest()}-2"
    assert stored["md5sum"] == etag == s3_etag(pid, "DCIM/photo.jpg")
    assert stored["sha256"] == hashlib.sha256(content).hexdigest() and stored["size"] == PHOTO
    assert reply.headers["Location"] == f"/api/v1/files/{pid}/DCIM/photo.jpg/"
    listed = {f["name"]: f for f in alice.get(f"files/{pid}/").json()}
    assert listed["DCIM/photo.jpg"]["md5sum"] == stored["md5sum"]
    assert follow(alice.get(f"files/{pid}/DCIM/photo.jpg/")).content == content
    ranged = follow(alice.get(f"files/{pid}/DCIM/photo.jpg/", headers={"Range": "bytes=1000-"}),
                    headers={"Range": "bytes=1000-"})
    assert ranged.status_code == 206 and ranged.content == content[1000:]


@pytest.mark.parametrize("size", [limits.LARGE_BODY_BYTES + 1000, PART_SIZE, PART_SIZE + 1])
def test_around_one_part_the_md5sum_is_s3s_etag(alice, pid, size):
    content = os.urandom(size)
    reply = upload(alice, pid, "data.gpkg", content)
    assert reply.status == 201, reply.content
    assert reply.json()["md5sum"] == s3_etag(pid, "data.gpkg")
    assert reply.json()["sha256"] == hashlib.sha256(content).hexdigest()


def test_the_service_refuses_what_the_api_refuses_before_reading_the_body(alice, users, pid,
                                                                         override_settings):
    large, small = os.urandom(limits.LARGE_BODY_BYTES + 10), b"small"
    mallory = users("mallory")
    before = everything()
    cases = [(alice.with_token(None), pid, "a.bin"), (alice.with_token("wrong"), pid, "a.bin"),
             (mallory, pid, "a.bin"), (alice, pid, "../a.bin"), (alice, "not-a-uuid", "a.bin")]
    for client, project, name in cases:
        refused, direct = upload(client, project, name, large), upload(client, project, name, small)
        assert refused.status == direct.status >= 400 and refused.json() == direct.json(), name
    assert alice.post(f"files/{pid}/a.bin/", raw_body=large, headers={"Content-Type": "text/plain"}
                      ).code == "empty_content"
    override_settings(default_storage_quota_bytes=1000)
    assert upload(alice, pid, "a.bin", large).code == "over_quota"
    assert everything() == before


def test_a_qgis_project_file_is_checked_as_on_the_direct_path(alice, pid):
    reply = upload(alice, pid, "project.qgs", b"<notqgis>" + b" " * limits.LARGE_BODY_BYTES)
    assert reply.status == 400 and reply.code == "invalid_qgis_project_file"
    assert alice.get(f"files/{pid}/").json() == []


class CutOff(io.RawIOBase):
    """A body whose client goes away after `limit` bytes."""

    def __init__(self, data: bytes, limit: int) -> None:
        self._data, self._limit, self._at = data, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._at >= self._limit:
            raise ConnectionResetError("the client went away")
        count = min(len(buffer), self._limit - self._at)
        buffer[:count] = self._data[self._at:self._at + count]
        self._at += count
        return count


def test_an_upload_cut_off_mid_body_leaves_nothing(alice, pid):
    from chalicelib.adapters import aws
    from chalicelib.config import settings

    content = os.urandom(3 * PART_SIZE)
    prepared = requests.Request("POST", "http://testserver/", files={"file": ("f", content)}).prepare()
    headers = [*prepared.headers.items(), ("Authorization", f"Token {alice.token}")]
    before = everything()
    answer = alice.front.handle("POST", f"/api/v1/files/{pid}/big.gpkg/", headers,
                                io.BufferedReader(CutOff(prepared.body, 2 * PART_SIZE + 5)))
    assert answer.status >= 400
    assert everything() == before  # no version, no quota, no multipart upload left
    assert aws.s3().list_multipart_uploads(Bucket=settings.bucket).get("Uploads", []) == []


def test_the_service_over_http_reads_chunked_and_announced_bodies(aws, alice, pid):
    from large_requests.server import make_server

    server = make_server("127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        content = os.urandom(PART_SIZE + 12345)
        body, headers = qfield_body(content)
        headers["Authorization"] = f"Token {alice.token}"
        announced = requests.post(f"{base}/api/v1/files/{pid}/a.jpg/", data=body, headers=headers, timeout=60)
        chunked = requests.post(f"{base}/api/v1/files/{pid}/b.jpg/", headers=headers, timeout=60,
                                data=(body[i:i + 100_000] for i in range(0, len(body), 100_000)))
        assert announced.status_code == chunked.status_code == 201, (announced.text, chunked.text)
        assert announced.json()["md5sum"] == chunked.json()["md5sum"] == s3_etag(pid, "b.jpg")
        assert requests.get(f"{base}/health", timeout=10).json() == {"status": "ok"}
        assert requests.get(f"{base}/api/v1/files/{pid}/a.jpg/", timeout=10).status_code == 405
        lost = requests.post(f"{base}/api/v1/nothing/", data=b"x", timeout=10)
        assert lost.status_code == 404 and lost.json()["code"] == "object_not_found"
    finally:
        server.shutdown()
        server.server_close()


def test_a_sha256_of_a_multipart_object_is_not_what_s3_checks(alice, pid):
    """Large objects carry S3's part MD5s (ContentMD5 of each part); the SHA-256 is the API's."""
    content = os.urandom(PART_SIZE * 2 + 1)
    reply = upload(alice, pid, "big.bin", content)
    assert reply.status == 201
    assert base64.b16encode(hashlib.sha256(content).digest()).decode().lower() == reply.json()["sha256"]
