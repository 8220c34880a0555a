"""The presigned multipart upload flow for files too large for one API request."""

import hashlib

import pytest
import requests

from chalicelib.rules.checksums import PART_SIZE, of_chunks
from tests.files_helpers import qgs, stored_state, upload


def _data(size: int) -> bytes:
    return (hashlib.sha256(b"seed").digest() * (size // 32 + 1))[:size]


def _put_parts(session: dict, data: bytes, only=None) -> None:
    for part in session["parts"]:
        if only is not None and part["part_number"] not in only:
            continue
        start = (part["part_number"] - 1) * session["part_size"]
        reply = requests.put(part["url"], data=data[start:start + part["size"]], timeout=60)
        assert reply.status_code == 200, reply.text


def test_begin_put_parts_resume_and_complete(alice, pid):
    data = _data(2 * PART_SIZE + 12345)
    reply = alice.post(f"uploads/{pid}/", json={"name": "rasters/big.tif", "size": len(data)})
    assert reply.status == 201
    session = reply.json()
    assert session["part_size"] == PART_SIZE
    assert [(p["part_number"], p["size"]) for p in session["parts"]] == [
        (1, PART_SIZE), (2, PART_SIZE), (3, 12345)]
    assert stored_state(pid)["owner_bytes"] == 0  # counted at completion, never held by a session

    _put_parts(session, data, only={1, 3})
    status = alice.get(f"uploads/{pid}/{session['upload_id']}/").json()
    assert [p["part_number"] for p in status["uploaded_parts"]] == [1, 3]
    assert [p["part_number"] for p in status["parts"]] == [2]

    early = alice.post(f"uploads/{pid}/{session['upload_id']}/complete/")
    assert (early.status, early.code) == (400, "validation_error")
    assert "[2]" in early.json()["message"]

    _put_parts(status, data)
    done = alice.post(f"uploads/{pid}/{session['upload_id']}/complete/")
    assert done.status == 201
    expected = of_chunks([data])
    assert (done.json()["md5sum"], done.json()["sha256"]) == (expected.md5sum, expected.sha256)
    assert expected.md5sum.endswith("-3")

    listed = alice.get(f"files/{pid}/").json()[0]
    assert (listed["name"], listed["size"]) == ("rasters/big.tif", len(data))
    assert listed["md5sum"] == expected.md5sum
    download = alice.get(f"files/{pid}/rasters/big.tif/")
    assert requests.get(download.headers["Location"], timeout=60).content == data
    state = stored_state(pid)
    assert state["owner_bytes"] == state["project_bytes"] == len(data)
    assert state["uploads"] == 0
    gone = alice.get(f"uploads/{pid}/{session['upload_id']}/")
    assert (gone.status, gone.code) == (404, "object_not_found")


def test_a_presigned_upload_becomes_a_new_version(alice, pid):
    upload(alice, pid, "a.bin", b"old")
    data = _data(100)
    session = alice.post(f"uploads/{pid}/", json={"name": "a.bin", "size": 100}).json()
    _put_parts(session, data)
    alice.post(f"uploads/{pid}/{session['upload_id']}/complete/")
    assert len(alice.get(f"files/{pid}/").json()[0]["versions"]) == 2


def test_abort_releases_everything(alice, pid):
    data = _data(PART_SIZE + 1)
    session = alice.post(f"uploads/{pid}/", json={"name": "x.bin", "size": len(data)}).json()
    _put_parts(session, data, only={1})
    assert alice.delete(f"uploads/{pid}/{session['upload_id']}/").status == 204
    state = stored_state(pid)
    assert (state["s3"], state["owner_bytes"], state["uploads"], state["items"]) == ([], 0, 0, [])
    from chalicelib.adapters import aws
    from chalicelib.config import settings

    assert not aws.s3().list_multipart_uploads(Bucket=settings.bucket).get("Uploads")


def test_parts_of_the_wrong_size_are_refused(alice, pid):
    session = alice.post(f"uploads/{pid}/", json={"name": "x.bin", "size": PART_SIZE + 10}).json()
    for part in session["parts"]:
        requests.put(part["url"], data=b"short", timeout=30)
    reply = alice.post(f"uploads/{pid}/{session['upload_id']}/complete/")
    assert (reply.status, reply.code) == (400, "validation_error")
    assert stored_state(pid)["items"] == []


@pytest.mark.parametrize("body, status, code", [
    ({"name": "a.bin"}, 400, "validation_error"),
    ({"name": "a.bin", "size": 0}, 400, "validation_error"),
    ({"name": "a.bin", "size": "lots"}, 400, "validation_error"),
    ({"name": "../a.bin", "size": 10}, 400, "validation_error"),
    ({"size": 10}, 400, "validation_error"),
    ({"name": "a.bin", "size": 10**15}, 400, "validation_error"),
])
def test_bad_begin_requests(alice, pid, body, status, code):
    reply = alice.post(f"uploads/{pid}/", json=body)
    assert (reply.status, reply.code) == (status, code)
    state = stored_state(pid)
    assert (state["owner_bytes"], state["uploads"]) == (0, 0)


def test_the_same_rules_as_direct_uploads(alice, pid, users):
    from chalicelib.models import User

    upload(alice, pid, "project.qgs", qgs())
    reply = alice.post(f"uploads/{pid}/", json={"name": "second.qgz", "size": 10})
    assert (reply.status, reply.code) == (400, "multiple_projects")
    User.get("alice").update(actions=[User.storage_quota_bytes.set(len(qgs()) + 5)])
    reply = alice.post(f"uploads/{pid}/", json={"name": "big.bin", "size": 6})
    assert (reply.status, reply.code) == (402, "over_quota")
    # Space that fills up while the parts travel is caught at completion, and nothing is kept.
    session = alice.post(f"uploads/{pid}/", json={"name": "late.bin", "size": 5}).json()
    _put_parts(session, b"12345")
    upload(alice, pid, "filler.bin", b"x")
    reply = alice.post(f"uploads/{pid}/{session['upload_id']}/complete/")
    assert (reply.status, reply.code) == (402, "over_quota")
    assert "late.bin" not in [name for name, _ in stored_state(pid)["items"]]
    assert stored_state(pid)["owner_bytes"] == len(qgs()) + 1
    # The parts wait: once space is freed, the same upload completes.
    status = alice.get(f"uploads/{pid}/{session['upload_id']}/").json()
    assert (status["state"], len(status["uploaded_parts"])) == ("open", 1)
    alice.delete(f"files/{pid}/filler.bin/")
    assert alice.post(f"uploads/{pid}/{session['upload_id']}/complete/").status == 201
    users("rep")
    alice.post(f"collaborators/{pid}/", data={"collaborator": "rep", "role": "reporter"})
    reporter = alice.login("rep", "correct horse battery")
    reply = reporter.post(f"uploads/{pid}/", json={"name": "data.csv", "size": 5})
    assert (reply.status, reply.code) == (403, "permission_denied")
    assert stored_state(pid)["uploads"] == 0


def test_sessions_belong_to_their_creator(alice, pid, users):
    session = alice.post(f"uploads/{pid}/", json={"name": "a.bin", "size": 10}).json()
    bob = users("bob")
    alice.post(f"collaborators/{pid}/", data={"collaborator": "bob", "role": "editor"})
    for reply in (bob.get(f"uploads/{pid}/{session['upload_id']}/"),
                  bob.post(f"uploads/{pid}/{session['upload_id']}/complete/"),
                  bob.delete(f"uploads/{pid}/{session['upload_id']}/")):
        assert (reply.status, reply.code) == (404, "object_not_found")


def test_an_interrupted_completion_resumes_without_counting_twice(alice, pid, monkeypatch):
    """A completion cut off after assembling the object (a Lambda timeout) is resumed by a retry,
    once its claim is old enough: one version, the quota counted once, nothing left over."""
    from datetime import timedelta

    from chalicelib.models import UploadSession
    from chalicelib.models.base import utcnow
    from chalicelib.services import uploads

    data = _data(PART_SIZE + 5)
    session = alice.post(f"uploads/{pid}/", json={"name": "a.bin", "size": len(data)}).json()
    _put_parts(session, data)

    def killed(*args, **kwargs):  # SystemExit skips every `except Exception`: no cleanup runs,
        raise SystemExit("stopped")  # as when Lambda stops the function at its timeout

    with monkeypatch.context() as patch:
        patch.setattr(uploads, "_checksums_of_stored", killed)
        with pytest.raises(SystemExit):
            alice.post(f"uploads/{pid}/{session['upload_id']}/complete/")
    stored = UploadSession.get(session["upload_id"])
    assert (stored.state, stored.quota_counted, bool(stored.s3_version_id)) == ("completing", True, True)
    status = alice.get(f"uploads/{pid}/{session['upload_id']}/")
    assert status.status == 200 and status.json()["state"] == "completing"

    retry = alice.post(f"uploads/{pid}/{session['upload_id']}/complete/")
    assert (retry.status, retry.code) == (409, "conflict")  # the claim is still fresh
    stored.update(actions=[UploadSession.claimed_at.set(utcnow() - timedelta(minutes=20))])
    retry = alice.post(f"uploads/{pid}/{session['upload_id']}/complete/")
    assert retry.status == 201 and retry.json()["md5sum"] == of_chunks([data]).md5sum
    state = stored_state(pid)
    assert state["items"] == [("a.bin", 1)] and len(state["s3"]) == 1
    assert state["owner_bytes"] == state["project_bytes"] == len(data) and state["uploads"] == 0


def test_a_completion_cut_off_after_recording_is_not_recorded_twice(alice, pid, monkeypatch):
    from datetime import timedelta

    from chalicelib.models import UploadSession
    from chalicelib.models.base import utcnow
    from chalicelib.services import files, uploads

    session = alice.post(f"uploads/{pid}/", json={"name": "a.bin", "size": 10}).json()
    _put_parts(session, b"0123456789")
    record = files.record_version

    def record_then_die(*args, **kwargs):
        record(*args, **kwargs)
        raise SystemExit("stopped")

    with monkeypatch.context() as patch:
        patch.setattr(uploads.files, "record_version", record_then_die)
        with pytest.raises(SystemExit):
            alice.post(f"uploads/{pid}/{session['upload_id']}/complete/")
    UploadSession.get(session["upload_id"]).update(
        actions=[UploadSession.claimed_at.set(utcnow() - timedelta(minutes=20))])
    assert alice.post(f"uploads/{pid}/{session['upload_id']}/complete/").status == 201
    state = stored_state(pid)
    assert state["items"] == [("a.bin", 1)] and state["owner_bytes"] == 10 and state["uploads"] == 0


@pytest.fixture
def background_tasks(monkeypatch):
    """Background tasks held back until the test runs them: what the answer did without them."""
    from chalicelib.adapters import background

    held = []
    monkeypatch.setattr(background, "start", lambda task, **arguments: held.append((task, arguments)))
    return held


def _read_backs(monkeypatch) -> list:
    from chalicelib.adapters import storage

    reads, stream = [], storage.stream_object
    monkeypatch.setattr(storage, "stream_object", lambda *args: reads.append(args) or stream(*args))
    return reads


def test_a_declared_sha256_is_recorded_at_once_and_checked_in_the_background(
        alice, pid, monkeypatch, background_tasks):
    data = _data(2 * PART_SIZE + 7)
    session = alice.post(f"uploads/{pid}/", json={"name": "big.bin", "size": len(data)}).json()
    _put_parts(session, data)
    expected = of_chunks([data])
    reads = _read_backs(monkeypatch)
    done = alice.post(f"uploads/{pid}/{session['upload_id']}/complete/", json={"sha256": expected.sha256})
    assert done.status == 201
    assert (done.json()["md5sum"], done.json()["sha256"]) == (expected.md5sum, expected.sha256)
    assert reads == [], "the answer did not wait for a read-back"
    [(task, arguments)] = background_tasks
    task(**arguments)
    assert len(reads) == 1
    listed = alice.get(f"files/{pid}/").json()[0]
    assert (listed["sha256"], listed["md5sum"]) == (expected.sha256, expected.md5sum)
    assert listed["size"] == len(data)
    state = stored_state(pid)
    assert state["owner_bytes"] == state["project_bytes"] == len(data)


def test_bytes_that_differ_from_the_declared_sha256_lose_their_version(alice, pid, background_tasks):
    upload(alice, pid, "big.bin", b"the version before")
    data = _data(PART_SIZE + 3)
    session = alice.post(f"uploads/{pid}/", json={"name": "big.bin", "size": len(data)}).json()
    _put_parts(session, data)
    wrong = hashlib.sha256(b"something else").hexdigest()
    done = alice.post(f"uploads/{pid}/{session['upload_id']}/complete/", json={"sha256": wrong})
    assert done.status == 201
    assert len(alice.get(f"files/{pid}/").json()[0]["versions"]) == 2
    [(task, arguments)] = background_tasks
    task(**arguments)
    task(**arguments)  # a task may run again: nothing more happens
    [listed] = alice.get(f"files/{pid}/").json()
    assert [v["size"] for v in listed["versions"]] == [len(b"the version before")]
    state = stored_state(pid)
    assert state["owner_bytes"] == state["project_bytes"] == len(b"the version before")
    assert len(state["s3"]) == 1


def test_a_new_file_whose_bytes_differ_from_the_declared_sha256_is_removed(alice, pid, background_tasks):
    data = _data(1000)
    session = alice.post(f"uploads/{pid}/", json={"name": "new.bin", "size": len(data)}).json()
    _put_parts(session, data)
    wrong = hashlib.sha256(b"not these bytes").hexdigest()
    assert alice.post(f"uploads/{pid}/{session['upload_id']}/complete/", json={"sha256": wrong}).status == 201
    [(task, arguments)] = background_tasks
    task(**arguments)
    assert alice.get(f"files/{pid}/").json() == []
    state = stored_state(pid)
    assert (state["owner_bytes"], state["project_bytes"], state["s3"]) == (0, 0, [])


@pytest.mark.parametrize("sha256", ["ABC", "g" * 64, "A" * 64, 12])
def test_a_declared_sha256_must_be_64_lowercase_hex_digits(alice, pid, sha256):
    session = alice.post(f"uploads/{pid}/", json={"name": "x.bin", "size": 10}).json()
    _put_parts(session, _data(10))
    refused = alice.post(f"uploads/{pid}/{session['upload_id']}/complete/", json={"sha256": sha256})
    assert (refused.status, refused.code) == (400, "validation_error")
    assert alice.get(f"uploads/{pid}/{session['upload_id']}/").status == 200  # nothing was done


def test_a_qgis_file_is_read_back_whatever_its_client_declares(alice, pid, monkeypatch, background_tasks):
    data = qgs()
    session = alice.post(f"uploads/{pid}/", json={"name": "p.qgs", "size": len(data)}).json()
    _put_parts(session, data)
    reads = _read_backs(monkeypatch)
    wrong = hashlib.sha256(b"declared").hexdigest()
    done = alice.post(f"uploads/{pid}/{session['upload_id']}/complete/", json={"sha256": wrong})
    assert done.status == 201 and done.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(reads) == 1 and background_tasks == []
