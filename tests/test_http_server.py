"""The local stack's HTTP server, over real sockets on loopback: a crowd of connections, broken
framing and over-long headers get JSON answers, never a reset, a hang or a traceback."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import PASSWORD


@contextlib.contextmanager
def serving(gateway):
    from devstack.http_server import make_server

    server = make_server(gateway, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def server(api):
    with serving(api.gateway) as url:
        yield url


def _login(url: str) -> str:
    reply = requests.post(f"{url}/api/v1/auth/login/", data={"username": "alice", "password": PASSWORD},
                          timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()["token"]


@pytest.fixture
def session(server, alice):
    """The server's URL, a token of alice and her project's id."""
    token = _login(server)
    pid = requests.post(f"{server}/api/v1/projects/", json={"name": "p"}, timeout=30,
                        headers={"Authorization": f"Token {token}"}).json()["id"]
    return server, token, pid


def _raw(url: str, request: bytes, timeout: float = 60) -> bytes:
    """Send bytes as they are and read the whole answer (the server closes after an error). A
    server that hangs leaves the answer incomplete once `timeout` passes without a byte."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                    break
        return b"".join(chunks)


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _json_error(answer: bytes, status: int) -> dict:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == str(status).encode(), answer[:300]
    assert b"content-type: application/json" in head.lower(), head
    error = json.loads(body)
    assert set(error) == {"code", "message"} and "Traceback" not in error["message"]
    return error


def test_twenty_and_more_concurrent_uploads_are_all_served(session):
    url, token, pid = session

    def one_upload(n: int) -> int:
        with requests.Session() as client:  # a connection of its own, opened now
            reply = client.post(f"{url}/api/v1/files/{pid}/f{n}.bin/", timeout=60,
                                headers={"Authorization": f"Token {token}"},
                                files={"file": ("f", b"z" * 200_000)})
            return reply.status_code

    barrier = threading.Barrier(40)

    def at_once(n: int) -> int:
        barrier.wait()
        return one_upload(n)

    with ThreadPoolExecutor(40) as pool:
        statuses = list(pool.map(at_once, range(40)))
    assert statuses == [201] * 40
    listing = requests.get(f"{url}/api/v1/files/{pid}/", headers={"Authorization": f"Token {token}"},
                           timeout=30).json()
    assert len(listing) == 40


def test_a_negative_content_length_is_a_json_400_not_a_hang(server):
    answer = _raw(server, b"POST /api/v1/auth/login/ HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nabc")
    assert _json_error(answer, 400)["code"] == "api_error"


@pytest.mark.parametrize("body", [
    b"zz\r\nhello\r\n0\r\n\r\n",  # not a hexadecimal size
    b"5\r\nhello world, longer than announced\r\n0\r\n\r\n",
    b"-1\r\nx\r\n0\r\n\r\n",
])
def test_a_malformed_chunked_body_is_a_json_400(server, body):
    request = (b"POST /api/v1/auth/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert _json_error(_raw(server, request), 400)["code"] == "api_error"


def test_an_over_long_header_is_a_json_431(server):
    request = b"GET /api/v1/status/ HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 400_000 + b"\r\n\r\n"
    assert _json_error(_raw(server, request), 431)["code"] == "request_header_fields_too_large"


@pytest.mark.parametrize("method", ["TRACE", "OPTIONS", "PROPFIND"])
def test_unserved_methods_over_http_are_json(server, method):
    request = f"{method} /api/v1/projects/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    answer = _raw(server, request.encode())
    assert _json_error(answer, 405)["code"] == "method_not_allowed"


def test_keep_alive_serves_many_requests_on_one_connection(server):
    """(How fast: bench/api_latency.py, the kept-alive connection.)"""
    host, port = server.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    for _ in range(100):
        connection.request("GET", "/api/v1/auth/providers/")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())[0]["id"] == "credentials"
    connection.close()


def test_a_large_chunked_body_is_read_whole_and_refused_as_api_gateway_does(session):
    """A chunked body of 20 MiB sent to the gateway itself is read to its end and answered with
    API Gateway's 413 (the edge sends large file uploads elsewhere: tests/test_large_requests.py)."""
    url, token, pid = session
    payload = bytes(range(256)) * (20 * 1024 * 1024 // 256)  # 20 MiB
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n").encode()

    def body():
        yield head
        for start in range(0, len(payload), 1024 * 1024):
            yield payload[start:start + 1024 * 1024]
        yield f"\r\n--{boundary}--\r\n".encode()

    reply = requests.post(f"{url}/api/v1/files/{pid}/big.bin/", data=body(), timeout=120,
                          headers={"Authorization": f"Token {token}",
                                   "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert reply.status_code == 413 and reply.json()["code"] == "payload_too_large", reply.text
    listed = requests.get(f"{url}/api/v1/files/{pid}/", timeout=30,
                          headers={"Authorization": f"Token {token}"})
    assert listed.json() == []


def test_a_large_answer_arrives_whole_and_the_connection_serves_on(session):
    """A large body (a whole list of 600 files of ten versions, 2 MB of JSON, gzip-compressed for
    `requests`, which takes gzip) is sent from the app's buffer: the same items as its pages give,
    and the connection stays usable."""
    from tests.large_project import add_files

    url, token, pid = session
    add_files(pid, 600, versions=10)
    headers = {"Authorization": f"Token {token}"}
    with requests.Session() as client:
        whole = client.get(f"{url}/api/v1/files/{pid}/", headers=headers, timeout=60)
        assert whole.status_code == 200 and len(whole.content) > 1024 * 1024
        assert whole.headers["Content-Encoding"] == "gzip"
        assert int(whole.headers["Content-Length"]) < len(whole.content) / 2
        pages = [client.get(f"{url}/api/v1/files/{pid}/?limit=200&offset={offset}", headers=headers,
                            timeout=60).json() for offset in (0, 200, 400)]
    assert whole.json() == pages[0] + pages[1] + pages[2]
    assert [item["name"] for item in whole.json()] == [f"data/f{n:06d}.csv" for n in range(600)]


def test_percent_encoded_paths_reach_the_gateway_byte_for_byte(session):
    url, token, pid = session
    headers = {"Authorization": f"Token {token}"}
    reply = requests.post(f"{url}/api/v1/files/{pid}/DCIM/caf%C3%A9%20a%2Bb.txt/", headers=headers,
                          files={"file": ("f", b"1")}, timeout=30)
    assert reply.status_code == 201 and reply.json()["name"] == "DCIM/café a+b.txt"


@pytest.mark.parametrize("target", [
    "/api/v1/files/{pid}/../../../etc/passwd/", "/api/v1/files/{pid}/..%2f..%2fetc%2fpasswd/",
    "/api/v1/files/{pid}/%FF%FE/", "/api/v1/files/{pid}/\xff\xfe/", "/api/v1/../../etc/passwd",
    "/api/v1/files/{pid}/a\x00b/", "//api//v1//projects//", "/api/v1/files/{pid}/%2F/",
])
def test_hostile_request_targets_over_http_sent_byte_for_byte(session, target):
    url, token, pid = session
    request = (f"GET {target.format(pid=pid)} HTTP/1.1\r\nHost: x\r\nAuthorization: Token {token}\r\n"
               "Content-Length: 0\r\n\r\n").encode("latin-1")
    answer = _raw(url, request)
    status = int(answer.split(b" ")[1])
    assert 400 <= status < 500, answer[:300]
    assert b"root:" not in answer
    head, _, body = answer.partition(b"\r\n\r\n")
    assert json.loads(body)["code"], answer[:300]


def test_binary_header_bytes_over_http(session):
    url, token, pid = session
    for value in (b"\x80\xff\xfe", b"\x01\x02", b"Token \xff" * 1000):
        request = (f"GET /api/v1/files/{pid}/ HTTP/1.1\r\nHost: x\r\nAuthorization: Token {token}\r\n"
                   ).encode() + b"X-Binary: " + value + b"\r\nUser-Agent: " + value + b"\r\n\r\n"
        answer = _raw(url, request)
        assert int(answer.split(b" ")[1]) < 500, answer[:300]
