"""`qfc-transfer` pieces that the local stack cannot exercise: exit codes, URL quoting, error
parsing, and renewing presigned URLs that S3 refuses as expired (moto never expires them)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
import requests

from qfc_transfer import api as api_module
from qfc_transfer import cli, download, parallel, upload
from qfc_transfer.api import Api, file_path
from qfc_transfer.errors import ApiError


class FakeResponse:
    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.ok = status < 400
        self.headers = headers or {}
        self._body = body
        self.text = body.decode(errors="replace")

    def iter_content(self, size: int):
        for start in range(0, len(self._body), size):
            yield self._body[start:start + size]

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *_: object) -> None:
        pass


class FakeS3:
    """Answers 403 (expired) for URLs in `expired`, else as S3 would; records what was asked."""

    def __init__(self, data: bytes, expired: set[str]) -> None:
        self.data = data
        self.expired = expired
        self.calls: list[str] = []

    def put(self, url: str, data, timeout) -> FakeResponse:
        self.calls.append(url)
        b"".join(iter(data))  # sends the body, as requests would
        return FakeResponse(403 if url in self.expired else 200)

    def get(self, url: str, headers: dict[str, str], stream: bool, timeout) -> FakeResponse:
        self.calls.append(url)
        if url in self.expired:
            return FakeResponse(403, b"<Error><Code>AccessDenied</Code>Request has expired</Error>")
        start, end = (int(n) for n in headers["Range"].removeprefix("bytes=").split("-"))
        return FakeResponse(206, self.data[start:end + 1],
                            {"Content-Range": f"bytes {start}-{end}/{len(self.data)}"})


class FakeApi:
    def __init__(self, answer: dict) -> None:
        self.answer = answer
        self.asked = 0

    def json(self, method: str, path: str) -> dict:
        self.asked += 1
        return self.answer

    def call(self, method: str, path: str, params=None, allow_redirects=True) -> FakeResponse:
        self.asked += 1
        response = FakeResponse(302, headers={"Location": f"https://s3.example/fresh-{self.asked}"})
        response.url = "https://api.example/" + path
        return response


def no_progress() -> parallel.Progress:
    return parallel.Progress(0, 0, "test", enabled=False)


def test_file_paths_are_quoted_per_segment():
    assert file_path("files", "p1", "maps/a b#1?.gpkg") == "files/p1/maps/a%20b%231%3F.gpkg/"


def test_ctrl_c_exits_130_and_says_how_to_resume(monkeypatch, tmp_path, capsys):
    local = tmp_path / "f.bin"
    local.write_bytes(b"x")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(upload, "upload", interrupted)
    assert cli.main(["--url", "http://127.0.0.1:1/api/v1/", "--token", "t", "upload", "p", str(local)]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err


def test_missing_configuration_is_an_error(monkeypatch, capsys):
    monkeypatch.delenv("QFIELDCLOUD_URL", raising=False)
    assert cli.main(["--token", "t", "download", "p", "a.bin"]) == 1
    assert capsys.readouterr().err.startswith("error: missing_url: ")


def test_api_errors_keep_the_api_code_or_fall_back_to_the_status(monkeypatch):
    def answer(status: int, body: bytes) -> requests.Response:
        response = requests.Response()
        response.status_code, response._content = status, body
        response.url = "http://api.example/x/"
        response.request = requests.Request("GET", response.url).prepare()
        return response

    replies = iter([answer(404, b'{"code": "object_not_found", "message": "No such project."}'),
                    answer(502, b"<html>Bad Gateway</html>")])
    monkeypatch.setattr(api_module, "http", lambda: type("S", (), {"request": lambda *a, **k: next(replies)}))
    client = Api("http://api.example", "t")
    assert client.base_url == "http://api.example/"
    with pytest.raises(ApiError) as first:
        client.call("GET", "x/")
    assert (first.value.status, first.value.code, first.value.message) == (404, "object_not_found",
                                                                           "No such project.")
    with pytest.raises(ApiError) as second:
        client.call("GET", "x/")
    assert second.value.code == "http_502" and "Bad Gateway" in second.value.message


def test_an_expired_part_url_is_renewed_from_the_session_status(monkeypatch, tmp_path: Path):
    local = tmp_path / "f.bin"
    local.write_bytes(b"0123456789")
    s3 = FakeS3(b"", expired={"https://s3.example/old"})
    monkeypatch.setattr(upload, "http", lambda: s3)
    fake_api = FakeApi({"parts": [{"part_number": 1, "size": 10, "url": "https://s3.example/new"}]})
    urls = upload._PartUrls(fake_api, "uploads/p/u/", [{"part_number": 1, "url": "https://s3.example/old"}])
    monkeypatch.setattr(parallel, "ATTEMPTS", 2)
    with open(local, "rb") as file:
        upload._put_part(file.fileno(), upload.Part(1, 0, 10), urls, no_progress(), threading.Event())
    assert s3.calls == ["https://s3.example/old", "https://s3.example/new"]
    assert fake_api.asked == 1


def test_an_expired_download_url_is_asked_of_the_api_again(monkeypatch, tmp_path: Path):
    data = bytes(range(256)) * 100
    s3 = FakeS3(data, expired={"https://s3.example/fresh-1"})
    monkeypatch.setattr(download, "http", lambda: s3)
    monkeypatch.setattr(download, "RANGE_SIZE", 1000)
    monkeypatch.setattr(parallel, "ATTEMPTS", 2)
    fake_api = FakeApi({})
    location = download._Location(fake_api, "files/p/a.bin/", "v1")
    target = tmp_path / "a.bin.part"
    target.write_bytes(b"\0" * len(data))
    with open(target, "r+b") as file:
        download._fetch_range(file.fileno(), 3, len(data), location, no_progress(), threading.Event())
    assert s3.calls == ["https://s3.example/fresh-1", "https://s3.example/fresh-2"]
    assert target.read_bytes()[3000:4000] == data[3000:4000]


class ScriptedApi:
    """Answers the completion requests in order, as a server busy completing a large file would."""

    def __init__(self, answers: list) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def json(self, method: str, path: str, **_: object):
        self.asked.append(f"{method} {path}")
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _sums(data: bytes):
    from concurrent.futures import Future

    future = Future()
    future.set_result(upload.LocalDigest(len(data), hashlib.sha256(data).hexdigest()))
    return future


def test_completion_waits_while_the_server_is_still_completing(monkeypatch):
    monkeypatch.setattr(upload, "COMPLETE_POLL_SECONDS", 0)
    done = {"name": "a.bin", "version_id": "v1", "size": 3}
    api = ScriptedApi([ApiError(504, "http_504", "gateway timeout"),
                       ApiError(409, "conflict", "being completed"), done])
    assert upload._complete(api, "uploads/p/u/", "files/metadata/p/a.bin/", _sums(b"abc"), print) == done
    assert api.asked == ["POST uploads/p/u/complete/"] * 3


def test_a_session_gone_meanwhile_is_found_as_a_version(monkeypatch):
    monkeypatch.setattr(upload, "COMPLETE_POLL_SECONDS", 0)
    sums = _sums(b"abc").result()
    metadata = {"name": "a.bin", "versions": [
        {"version_id": "old", "size": 3, "sha256": "0" * 64},
        {"version_id": "new", "size": 3, "sha256": sums.sha256},
    ]}
    api = ScriptedApi([ApiError(404, "object_not_found", "gone"), metadata])
    result = upload._complete(api, "uploads/p/u/", "files/metadata/p/a.bin/", _sums(b"abc"), print)
    assert result["version_id"] == "new"
    api = ScriptedApi([ApiError(404, "object_not_found", "gone"), {"name": "a.bin", "versions": []}])
    with pytest.raises(upload.TransferError, match="upload_lost"):
        upload._complete(api, "uploads/p/u/", "files/metadata/p/a.bin/", _sums(b"abc"), print)


def test_other_refusals_end_the_completion_at_once():
    api = ScriptedApi([ApiError(400, "validation_error", "parts missing")])
    with pytest.raises(ApiError, match="validation_error"):
        upload._complete(api, "uploads/p/u/", "files/metadata/p/a.bin/", _sums(b"abc"), print)


def test_the_local_file_is_checked_by_size_and_sha256(tmp_path: Path):
    """Equal SHA-256s mean equal bytes: the server's md5sum, derived from those bytes, needs no
    MD5 of the local file (which would triple the hashing that competes with the transfer)."""
    local = tmp_path / "a.bin"
    local.write_bytes(b"x" * (3 * 1024 * 1024 + 5))
    digest = upload._hash_in_background(local).result(timeout=30)
    assert digest == upload.LocalDigest(local.stat().st_size, hashlib.sha256(local.read_bytes()).hexdigest())
    stored = {"name": "a.bin", "version_id": "v1", "size": digest.size, "sha256": digest.sha256,
              "md5sum": "computed by the server"}
    upload._compare(stored, digest, local)
    for other in ({"sha256": "0" * 64}, {"size": digest.size - 1}):
        with pytest.raises(upload.TransferError, match="checksum_mismatch") as refused:
            upload._compare({**stored, **other}, digest, local)
        assert "may have changed during the upload" in refused.value.message


def test_ctrl_c_stops_a_part_mid_body_but_not_one_already_sent():
    """A part cut off mid-body never lands; one whose every byte is out lands anyway, so the
    client waits for its answer and no part is still landing after an interrupted upload returns
    (else a resume could count one part too few)."""
    progress = parallel.Progress(3 * upload._BODY_BLOCK, 0, "", enabled=False)
    cancel = threading.Event()

    cut = upload._Body(bytes(2 * upload._BODY_BLOCK), progress, cancel)
    assert len(cut.read(upload._BODY_BLOCK)) == upload._BODY_BLOCK
    cancel.set()
    with pytest.raises(parallel.Cancelled):
        cut.read(upload._BODY_BLOCK)

    cancel.clear()
    sent = upload._Body(bytes(upload._BODY_BLOCK), progress, cancel)
    assert b"".join(sent) == bytes(upload._BODY_BLOCK)
    cancel.set()
    assert len(sent.read(upload._BODY_BLOCK)) == 0  # the end of the body, not an interruption
