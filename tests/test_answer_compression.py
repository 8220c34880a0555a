"""Answers that fit Lambda's 6 MB: JSON gzip-compressed for a client that takes gzip, and a 302
to a presigned copy in S3 for a GET whose answer would not fit even so (docs/api.md, "Limits")."""

from __future__ import annotations

import gzip
import json

import pytest
import requests

from chalicelib.http import compression, limits
from tests.large_project import add_files

GZIP = {"Accept-Encoding": "gzip, deflate"}


def test_a_whole_list_of_2000_files_of_ten_versions_comes_back_compressed(alice, pid):
    add_files(pid, 2000, versions=10)
    reply = alice.get(f"files/{pid}/", headers=GZIP)
    assert reply.status == 200, reply.content[:300]
    assert reply.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in reply.headers["Vary"]
    assert len(reply.content) < limits.LAMBDA_ANSWER_BYTES  # what left the function, compressed
    files = json.loads(gzip.decompress(reply.content))
    assert len(json.dumps(files)) > limits.LAMBDA_ANSWER_BYTES  # it would not have fit as it is
    assert [f["name"] for f in files] == [f"data/f{n:06d}.csv" for n in range(2000)]
    assert all(len(f["versions"]) == 10 for f in files)


def test_without_gzip_the_same_list_is_a_302_to_a_presigned_copy(alice, pid):
    add_files(pid, 2000, versions=10)
    reply = alice.get(f"files/{pid}/")
    assert reply.status == 302, reply.content[:300]
    assert reply.json()["location"] == reply.headers["Location"]
    copy = requests.get(reply.headers["Location"], timeout=30)
    assert copy.status_code == 200 and copy.headers["Content-Type"].startswith("application/json")
    assert [f["name"] for f in copy.json()] == [f"data/f{n:06d}.csv" for n in range(2000)]
    # The copy is a presigned URL: without its signature S3 refuses it.
    assert requests.get(reply.headers["Location"].split("?")[0], timeout=30).status_code == 403


def test_beyond_6_mb_compressed_a_client_taking_gzip_is_redirected_to_a_gzip_copy(alice, pid, monkeypatch):
    """10,000 files of ten versions compress to some 2 MB; a list that compresses to more than
    Lambda's answer is sent the same way as an uncompressed one, the copy stored compressed."""
    add_files(pid, 300, versions=10)
    monkeypatch.setattr(limits, "LAMBDA_ANSWER_BYTES", compression.ANSWER_ENVELOPE_BYTES + 50_000)
    reply = alice.get(f"files/{pid}/", headers=GZIP)
    assert reply.status == 302, reply.content[:300]
    copy = requests.get(reply.headers["Location"], headers=GZIP, timeout=30)
    assert copy.headers["Content-Encoding"] == "gzip"
    assert len(copy.json()) == 300  # requests decodes it, as it does the API's own answers


def test_a_large_answer_to_anything_but_a_get_is_left_to_the_gateway(api):
    """No answer of this API but a GET grows with the data; were one to, API Gateway's 502."""
    event = {"httpMethod": "POST", "headers": {}}
    answer = {"statusCode": 200, "headers": {"Content-Type": "application/json"},
              "body": json.dumps(["x" * 100] * 70_000)}
    assert compression.fitted(event, answer) is answer


@pytest.mark.parametrize(("accept_encoding", "compressed"), [
    ("gzip, deflate", True), ("deflate, gzip;q=0.5", True), ("*", True), ("gzip;q=0", False),
    ("identity", False), ("br", False), (None, False),
])
def test_only_a_client_that_takes_gzip_gets_it(alice, pid, accept_encoding, compressed):
    add_files(pid, 20, versions=2)
    headers = {"Accept-Encoding": accept_encoding} if accept_encoding else {}
    reply = alice.get(f"files/{pid}/", headers=headers)
    assert reply.status == 200
    assert (reply.headers.get("Content-Encoding") == "gzip") is compressed
    body = gzip.decompress(reply.content) if compressed else reply.content
    assert len(json.loads(body)) == 20


def test_small_answers_and_errors_go_as_they_are(alice, pid):
    assert "Content-Encoding" not in alice.get(f"projects/{pid}/", headers=GZIP).headers
    missing = alice.get("projects/00000000-0000-0000-0000-000000000000/", headers=GZIP)
    assert missing.status == 404 and missing.code and "Content-Encoding" not in missing.headers
