"""Hostile input, request by request: each is a clear 4xx with the API's JSON error (or, where
the request is otherwise fine, served as usual), never a 5xx, a crash or a hang, and nothing is
half-written: every table's items, the storage counters and every S3 object version are listed
before and after (`files_helpers.everything`)."""

from __future__ import annotations

import io
import re
import tracemalloc
import uuid
import zipfile
from urllib.parse import quote

import pytest
from requests.structures import CaseInsensitiveDict

from tests.client import Reply
from tests.files_helpers import everything, qgs, upload


@pytest.fixture
def world(alice, users):
    users("bob")
    pid = alice.create_project("target")["id"]
    assert upload(alice, pid, "a.txt", b"hello").status == 201
    alice.post(f"collaborators/{pid}/", json={"collaborator": "bob", "role": "editor"})
    return alice, pid


def assert_not_a_server_error(reply, *, refused: bool = True) -> None:
    assert reply.status < 500, (reply.status, reply.content[:300])
    if refused or reply.status >= 400:
        assert 400 <= reply.status < 500, (reply.status, reply.content[:300])
        assert reply.code and reply.json()["message"], reply.content[:300]


# --- Headers --------------------------------------------------------------------------------

HOSTILE_VALUES = ["x" * 100_000, "\x00\x01\x02\x7f", "\xe9\xff\xfe", "Token \x00\x00", " " * 5000,
                  "bytes=" + "9" * 10_000 + "-", "%00%ff", "\t\x0b\x0c"]
HEADERS = ["Authorization", "User-Agent", "Content-Type", "Range", "If-None-Match", "X-File-Version",
           "Accept-Language", "Host", "X-Forwarded-Proto", "Cookie"]


@pytest.mark.parametrize("header", HEADERS)
def test_over_long_and_binary_header_values(world, header):
    alice, pid = world
    before = everything()
    for value in HOSTILE_VALUES:
        for method, path in [("GET", "projects/?limit=1"), ("GET", f"files/{pid}/a.txt/"),
                             ("POST", f"files/{pid}/b.txt/"), ("DELETE", f"files/{pid}/none.txt/")]:
            # Sent as they are: the client library would refuse some of these values itself.
            headers = {"Authorization": f"Token {alice.token}", "Host": "testserver", header: value}
            response = alice.gateway.handle(method, f"/api/v1/{path}", list(headers.items()), b"")
            reply = Reply(response.status, CaseInsensitiveDict(response.headers), response.body)
            assert_not_a_server_error(reply, refused=method != "GET")
    assert everything() == before


# --- JSON -----------------------------------------------------------------------------------

@pytest.mark.parametrize("body, code", [
    ("[" * 100_000 + "]" * 100_000, "api_error"),
    ('{"name": "p", "description": ' + "[" * 900 + "]" * 900 + "}", "validation_error"),
    ('{"name": "p", "x": ' + '{"a":' * 5000 + "1" + "}" * 5000 + "}", "api_error"),
    ('{"name": "p", "description": "' + "x" * 2_000_000 + '"}', "payload_too_large"),
    ("[" + "1," * 3_000_000 + "1]", "payload_too_large"),
    ('{"name": "one", "name": "two"}', "api_error"),
    ('{"name": "p", "owner": {"owner": {"owner": "alice"}}}', "validation_error"),
    ('{"name": "p", "is_public": "maybe"}', "validation_error"),
    ('{"name": "\\ud800"}', "validation_error"),
    ("\ufeff{}", "validation_error"),
    ("NaN", "api_error"),
])
def test_deeply_nested_huge_or_ambiguous_json_bodies(world, body, code):
    alice, _ = world
    before = everything()
    reply = alice.post("projects/", raw_body=body.encode("utf-8", "surrogatepass"),
                       headers={"Content-Type": "application/json"})
    assert_not_a_server_error(reply)
    assert reply.code == code, reply.content[:300]
    assert everything() == before


def test_repeated_keys_in_a_patch_change_nothing(world):
    alice, pid = world
    before = everything()
    reply = alice.patch(f"projects/{pid}/", raw_body=b'{"owner": "alice", "owner": "bob"}',
                        headers={"Content-Type": "application/json"})
    assert (reply.status, reply.code) == (400, "api_error")
    assert alice.get(f"projects/{pid}/").json()["owner"] == "alice"
    assert everything() == before


# --- Invalid UTF-8 --------------------------------------------------------------------------

def test_invalid_utf8_in_paths_is_refused_not_mangled(world):
    alice, pid = world
    before = everything()
    for method, path in [("POST", f"files/{pid}/%FF%FE.txt/"), ("GET", f"files/{pid}/caf%E9.txt/"),
                         ("DELETE", f"files/{pid}/%C3%28/"), ("GET", f"files/metadata/{pid}/%80/"),
                         ("GET", f"collaborators/{pid}/%FF/"), ("GET", "subscriptions/%FFbob/current/"),
                         ("GET", f"packages/{pid}/latest/files/%FF/")]:
        files = {"file": ("x", b"x")} if method == "POST" else None
        reply = alice.request(method, path, files=files)
        assert (reply.status, reply.code) == (400, "validation_error"), (path, reply.content)
    assert everything() == before


@pytest.mark.parametrize("body, content_type", [
    (b'{"name": "\xff\xfe"}', "application/json"),
    (b"name=\xff\xfe", "application/x-www-form-urlencoded"),
    (b"name=%FF%FE", "application/x-www-form-urlencoded"),
    (b"\xff\xfe\x00{", "application/json"),
])
def test_invalid_utf8_in_bodies(world, body, content_type):
    alice, _ = world
    before = everything()
    reply = alice.post("projects/", raw_body=body, headers={"Content-Type": content_type})
    assert_not_a_server_error(reply)
    assert everything() == before


# --- Path traversal in every path parameter, sent byte for byte ----------------------------

TRAVERSALS = ["..", "../..", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "%2e%2e%2f%2e%2e%2f", "..%5c..%5c",
              "%252e%252e%252f", "a/../../b", "..;/", "%00", "%2F", "./.", "....//", "%c0%ae%c0%ae"]


def _route_targets(app, values: dict[str, str]):
    """Every (method, route, parameter) of the app, with every parameter but one filled in."""
    for route, entries in app.routes.items():
        params = re.findall(r"\{(\w+)\+?\}", route)
        methods = [m for m, entry in entries.items() if entry.view_name != "method_not_allowed"]
        for param in params:
            for method in methods:
                yield method, route, param, params


def test_path_traversal_in_every_path_parameter(world):
    alice, pid = world
    gateway = alice.gateway
    values = {"project_id": pid, "filename": "a.txt", "username": "bob", "job_id": str(uuid.uuid4()),
              "deltafile_id": str(uuid.uuid4()), "upload_id": str(uuid.uuid4()),
              "organization": "org1", "team": "field", "member": "bob"}
    headers = [("Authorization", f"Token {alice.token}"), ("Host", "testserver"),
               ("Content-Type", "application/json")]
    before = everything()
    seen = set()
    for method, route, param, params in _route_targets(gateway.app, values):
        for payload in TRAVERSALS:
            path = route
            for name in params:
                value = payload if name == param else quote(values[name], safe="")
                path = re.sub(r"\{" + name + r"\+?\}", value, path)
            response = gateway.handle(method, path + "/", headers, b"{}")
            seen.add(route)
            assert response.status < 500, (method, path, response.status, response.body[:200])
            if response.status >= 400:
                assert b'"code"' in response.body, (method, path, response.body[:200])
            assert b"root:" not in response.body
    assert len(seen) >= 15
    assert everything() == before


# --- Broken multipart -----------------------------------------------------------------------

def _multipart(parts: bytes, boundary: str = "b") -> dict:
    return {"raw_body": parts, "headers": {"Content-Type": f"multipart/form-data; boundary={boundary}"}}


PART = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\nhello\r\n'


BROKEN_MULTIPART = [
    (PART + b"--b--\r\n", {"Content-Type": "multipart/form-data"}, "api_error"),
    (PART[:-10], None, "api_error"),
    (PART, None, "api_error"),
    (b"".join(b'--b\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i for i in range(5000))
     + PART + b"--b--\r\n", None, "api_error"),
    (b'--b\r\nContent-Disposition: form-data; name="' + b"n" * 1_000_000
     + b'"; filename="x"\r\n\r\nx\r\n--b--\r\n', None, "api_error"),
    (b"--b\r\nX-No-Disposition: 1\r\n\r\nhello\r\n--b--\r\n", None, "api_error"),
    (b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n' + b"X-H: v\r\n" * 20_000
     + b"\r\nx\r\n--b--\r\n", None, "api_error"),
    (b"--b--\r\n", None, "empty_content"),
    (b"garbage without any boundary", None, "api_error"),
    (PART + PART + b"--b--\r\n", None, "multiple_contents"),
]


@pytest.mark.parametrize("body, headers, code", BROKEN_MULTIPART)
def test_broken_multipart_bodies(world, body, headers, code):
    alice, pid = world
    before = everything()
    kwargs = _multipart(body)
    if headers:
        kwargs["headers"] = headers
    reply = alice.post(f"files/{pid}/b.txt/", **kwargs)
    assert_not_a_server_error(reply)
    assert reply.code == code, reply.content[:300]
    assert everything() == before


class _BufferedRequest:
    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        self.headers = {name.lower(): value for name, value in headers.items()}
        self._event = {"body": body, "isBase64Encoded": False}

    def to_original_event(self) -> dict:
        return self._event


@pytest.mark.parametrize("body, headers, code", BROKEN_MULTIPART)
def test_a_body_read_whole_or_as_it_arrives_is_refused_alike(body, headers, code):
    """One parser reads multipart bodies on both paths: the API's (the body whole) and the
    large-request service's (the body as it arrives, the file part passed on)."""
    from chalicelib.errors import ApiError
    from chalicelib.http.request_data import multipart, stream_multipart

    content_type = (headers or _multipart(body)["headers"])["Content-Type"]
    with pytest.raises(ApiError) as whole:
        multipart(_BufferedRequest(body, {"Content-Type": content_type})).single("file")
    with pytest.raises(ApiError) as streamed:
        stream_multipart(content_type, io.BytesIO(body).read, lambda data: None)
    assert whole.value.code == streamed.value.code == code
    assert whole.value.message == streamed.value.message


# --- QGIS project files that attack their reader --------------------------------------------

def _zip(members: dict[str, bytes | int]) -> bytes:
    """A zip; an int member is that many zero bytes, compressed (a bomb)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, content in members.items():
            if isinstance(content, int):
                with archive.open(name, "w", force_zip64=True) as member:
                    block = b" " * (1024 * 1024)
                    for _ in range(content // len(block)):
                        member.write(block)
            else:
                archive.writestr(name, content)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _zip({"project.qgs": 1024 * 1024 * 1024})  # 1 GiB of spaces, about 1 MB zipped


@pytest.fixture
def expanded(monkeypatch):
    """How many bytes were read out of zip members."""
    read = zipfile.ZipExtFile.read
    count = [0]

    def counting(self, n=-1):
        data = read(self, n)
        count[0] += len(data)
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting)
    return count


def test_a_zip_bomb_posing_as_qgz_is_refused_without_being_expanded(world, bomb, expanded):
    alice, pid = world
    before = everything()
    reply = upload(alice, pid, "survey.qgz", bomb)
    assert (reply.status, reply.code) == (400, "invalid_qgis_project_file")
    assert expanded[0] <= 2 * 1024 * 1024  # of the 1 GiB inside
    assert everything() == before


def test_a_qgz_with_a_valid_head_and_a_huge_tail_is_accepted_unexpanded(world, expanded):
    alice, pid = world
    head = qgs().split(b"</qgis>")[0]
    buffer = io.BytesIO()
    with (zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
          archive.open("project.qgs", "w", force_zip64=True) as member):
        member.write(head)
        for _ in range(512):
            member.write(b"<!--" + b" " * (1024 * 1024) + b"-->")
    reply = upload(alice, pid, "survey.qgz", buffer.getvalue())
    assert reply.status == 201, reply.content
    assert expanded[0] <= 2 * 1024 * 1024
    assert reply.json()["size"] == len(buffer.getvalue())


@pytest.mark.parametrize("archive", [
    _zip({f"{n}.qgs": b"<qgis/>" for n in range(5000)}),
    _zip({"inner.zip": _zip({"project.qgs": b"<qgis/>"})}),
    b"PK\x03\x04" + b"\x00" * 100,
    _zip({"project.qgs": b"<?xml version='1.0'?>" + b" " * (2 * 1024 * 1024) + b"<qgis/>"}),
])
def test_broken_or_exotic_qgz_archives_are_refused(world, archive):
    alice, pid = world
    before = everything()
    reply = upload(alice, pid, "survey.qgz", archive)
    assert (reply.status, reply.code) == (400, "invalid_qgis_project_file")
    assert everything() == before


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE qgis [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
 <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
]>
<qgis version="3.34.0"><title>&g;</title></qgis>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE qgis [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<qgis version="3.34.0"><title>&xxe;</title></qgis>
"""


@pytest.mark.parametrize("content", [BILLION_LAUGHS, XXE])
def test_xml_entities_in_a_qgs_are_never_expanded_by_the_upload_check(world, content):
    """The upload only reads the root element's start; expat refuses runaway expansion and no
    external entity is ever fetched. (What the QGIS worker does with such a file is the jobs'
    side: see docs/security.md.)"""
    alice, pid = world
    tracemalloc.start()
    try:
        reply = upload(alice, pid, "survey.qgs", content)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024  # the entities expanded would be 3.8 GB
    assert_not_a_server_error(reply, refused=False)
    assert b"root:" not in reply.content
    if reply.status == 201:
        assert reply.json()["size"] == len(content)  # stored as sent, nothing expanded
