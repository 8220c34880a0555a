"""Project files: upload, list, versions, download (with Range and If-None-Match), delete."""

import hashlib
import threading
from urllib.parse import quote

import pytest
import requests

from tests.files_helpers import follow, qgs, stored_state, upload
from tests.jobs_helpers import run_jobs


def test_upload_list_download(alice, pid):
    reply = upload(alice, pid, "DCIM/photo é 1.jpg", b"jpeg bytes")
    assert reply.status == 201
    body = reply.json()
    assert (body["name"], body["size"]) == ("DCIM/photo é 1.jpg", 10)
    assert {"version_id", "uploaded_at"} <= body.keys()
    assert reply.headers["Location"] == f"/api/v1/files/{pid}/DCIM/photo%20%C3%A9%201.jpg/"

    listed = alice.get(f"files/{pid}/?skip_metadata=1").json()
    assert [f["name"] for f in listed] == ["DCIM/photo é 1.jpg"]
    item = listed[0]
    assert item["md5sum"] == hashlib.md5(b"jpeg bytes").hexdigest()
    assert item["sha256"] == hashlib.sha256(b"jpeg bytes").hexdigest()
    assert item["size"] == 10 and item["is_attachment"] is True and item["last_modified"]
    assert [v["version_id"] for v in item["versions"]] == [body["version_id"]]
    assert item["versions"][0]["is_latest"] is True

    download = alice.get(f"files/{pid}/{quote('DCIM/photo é 1.jpg')}/")
    assert download.headers["Location"].isascii()
    fetched = follow(download)
    assert fetched.content == b"jpeg bytes"
    assert "filename*=UTF-8''photo%20%C3%A9%201.jpg" in fetched.headers["Content-Disposition"]


def test_a_file_path_of_any_depth_is_one_file(alice, pid):
    deep = "/".join(f"d{i}" for i in range(40)) + "/leaf.txt"  # 40 folders deep
    assert upload(alice, pid, deep, b"deep").status == 201
    assert [f["name"] for f in alice.get(f"files/{pid}/").json()] == [deep]
    assert follow(alice.get(f"files/{pid}/{deep}/")).content == b"deep"
    assert alice.get(f"files/metadata/{pid}/{deep}/").json()["name"] == deep
    assert alice.delete(f"files/{pid}/{deep}/").status == 204


def test_qfield_multipart_with_a_text_part_and_a_device_path(alice, pid):
    reply = alice.post(f"files/{pid}/DCIM/img_1.jpg/", files=[
        ("text", ("", b"{}", "application/json")),
        ("file", ("/storage/emulated/0/QField/DCIM/img_1.jpg", b"photo", "application/json")),
    ])
    assert reply.status == 201
    assert [f["name"] for f in alice.get(f"files/{pid}/").json()] == ["DCIM/img_1.jpg"]


def test_three_versions_download_one_delete_another(alice, pid):
    ids = [upload(alice, pid, "notes.txt", f"version {i}".encode()).json()["version_id"]
           for i in (1, 2, 3)]
    item = alice.get(f"files/{pid}/").json()[0]
    assert [v["version_id"] for v in item["versions"]] == ids[::-1]  # newest first
    assert [v["is_latest"] for v in item["versions"]] == [True, False, False]
    assert item["md5sum"] == hashlib.md5(b"version 3").hexdigest()

    assert follow(alice.get(f"files/{pid}/notes.txt/?version={ids[0]}")).content == b"version 1"
    assert follow(alice.get(f"files/{pid}/notes.txt/?version_id={ids[1]}")).content == b"version 2"
    assert follow(alice.get(f"files/{pid}/notes.txt/")).content == b"version 3"

    assert alice.delete(f"files/{pid}/notes.txt/?version_id={ids[1]}").status == 204
    item = alice.get(f"files/{pid}/").json()[0]
    assert [v["version_id"] for v in item["versions"]] == [ids[2], ids[0]]
    assert follow(alice.get(f"files/{pid}/notes.txt/?version={ids[0]}")).content == b"version 1"
    assert len(stored_state(pid)["s3"]) == 2
    assert stored_state(pid)["project_bytes"] == 18


def test_delete_by_header_whole_file_and_last_version(alice, pid):
    first = upload(alice, pid, "a.txt", b"one").json()["version_id"]
    second = upload(alice, pid, "a.txt", b"two").json()["version_id"]
    assert alice.delete(f"files/{pid}/a.txt/", headers={"x-file-version": first}).status == 204
    reply = alice.delete(f"files/{pid}/a.txt/?version={second}")
    assert (reply.status, reply.code) == (400, "explicit_deletion_of_last_version")
    assert alice.delete(f"files/{pid}/a.txt/").status == 204
    assert alice.get(f"files/{pid}/").json() == []
    state = stored_state(pid)
    assert (state["s3"], state["project_bytes"], state["owner_bytes"]) == ([], 0, 0)
    reply = alice.delete(f"files/{pid}/a.txt/")
    assert (reply.status, reply.code) == (404, "object_not_found")


def test_unknown_file_or_version(alice, pid):
    upload(alice, pid, "a.txt", b"one")
    for path, expected in [
        ("files/{pid}/missing.txt/", (404, "object_not_found")),
        ("files/{pid}/a.txt/?version=11111111-1111-1111-1111-111111111111", (404, "object_not_found")),
        ("files/{pid}/a.txt/?version=pizza", (400, "validation_error")),
        ("files/metadata/{pid}/missing.txt/", (404, "object_not_found")),
    ]:
        reply = alice.get(path.format(pid=pid))
        assert (reply.status, reply.code) == expected, path


def test_if_none_match(alice, pid):
    upload(alice, pid, "a.txt", b"content")
    md5 = hashlib.md5(b"content").hexdigest()
    for value in (md5, f'"{md5}"', f'W/"{md5}"', f'"other", "{md5}"', "*"):
        reply = alice.get(f"files/{pid}/a.txt/", headers={"If-None-Match": value})
        assert (reply.status, reply.headers["ETag"]) == (304, f'"{md5}"'), value
    assert alice.get(f"files/{pid}/a.txt/", headers={"If-None-Match": "stale"}).status == 302


def test_qfield_resume_gets_exactly_the_missing_bytes(alice, pid):
    data = bytes(range(256)) * 8000  # 2 MB: QField resumes .part files of 1 MB and more
    upload(alice, pid, "data.gpkg", data)
    qfield = alice.with_token(alice.token)
    qfield.user_agent = "qfield|3.4.0|3.4.0|abc|"
    have = 1_000_003
    reply = qfield.get(f"files/{pid}/data.gpkg/", headers={"Range": f"bytes={have}-"})
    # QField re-requests the Location with no Range and no auth, and appends what arrives.
    rest = requests.get(reply.headers["Location"], timeout=30)
    assert rest.status_code == 200
    assert data[:have] + rest.content == data


def test_other_clients_keep_their_range_on_the_redirect(alice, pid):
    data = b"0123456789" * 100
    upload(alice, pid, "a.bin", data)
    reply = alice.get(f"files/{pid}/a.bin/", headers={"Range": "bytes=7-"})
    fetched = follow(reply, headers={"Range": "bytes=7-"})
    assert fetched.status_code == 206 and fetched.content == data[7:]
    reply = alice.get(f"files/{pid}/a.bin/", headers={"Range": "bytes=0-2"})
    assert follow(reply, headers={"Range": "bytes=0-2"}).content == b"012"


@pytest.mark.parametrize("header", [
    "bytes=-5", "bytes=0-0", "bytes=5-2", "bytes=0-1,4-5", "bytes=1000-", "bytes=10-1000",
    "bytes= 1-2", "items=1-2",
])
def test_invalid_ranges_are_416(alice, pid, header):
    upload(alice, pid, "a.bin", b"x" * 1000)
    reply = alice.get(f"files/{pid}/a.bin/", headers={"Range": header})
    assert (reply.status, reply.code) == (416, "invalid_http_range")


def test_metadata(alice, pid):
    upload(alice, pid, "data/survey.gpkg", b"gpkg")
    body = alice.get(f"files/metadata/{pid}/data/survey.gpkg/").json()
    assert body["content_type"] == "application/geopackage+sqlite3"
    assert (body["name"], body["size"], body["md5sum"]) == (
        "data/survey.gpkg", 4, hashlib.md5(b"gpkg").hexdigest())
    assert body["sha256"] == hashlib.sha256(b"gpkg").hexdigest() and body["last_modified"]


def test_project_bookkeeping_follows_uploads_and_deletes(alice, pid):
    project = alice.get(f"projects/{pid}/").json()
    assert (project["data_last_updated_at"], project["the_qgis_file_name"]) == (None, None)
    upload(alice, pid, "project.qgs", qgs())
    upload(alice, pid, "a.txt", b"12345")
    upload(alice, pid, "a.txt", b"123")
    project = alice.get(f"projects/{pid}/").json()
    assert project["file_storage_bytes"] == len(qgs()) + 8  # every kept version counts
    assert project["the_qgis_file_name"] == "project.qgs"
    assert project["needs_repackaging"] is True and project["status"] == "busy"  # being processed
    run_jobs()
    project = alice.get(f"projects/{pid}/").json()
    assert project["status"] == "ok"
    updated = project["data_last_updated_at"]
    assert updated
    alice.delete(f"files/{pid}/project.qgs/")
    project = alice.get(f"projects/{pid}/").json()
    assert project["the_qgis_file_name"] is None and project["status"] == "failed"
    assert project["data_last_updated_at"] > updated
    assert project["file_storage_bytes"] == 8
    assert alice.get("subscriptions/alice/current/").json()["storage_used_bytes"] == 8


def test_restricted_files_update_their_own_timestamp(alice, pid):
    alice.patch(f"projects/{pid}/", data={"has_restricted_projectfiles": "true"})
    upload(alice, pid, "project.qgs", qgs())
    assert alice.get(f"projects/{pid}/").json()["restricted_data_last_updated_at"]


def test_version_retention_deletes_old_versions_everywhere(alice, pid, override_settings):
    override_settings(keep_versions=3)
    for i in range(5):
        upload(alice, pid, "a.txt", b"v" * (i + 1))
    item = alice.get(f"files/{pid}/").json()[0]
    assert [v["size"] for v in item["versions"]] == [5, 4, 3]
    state = stored_state(pid)
    assert len(state["s3"]) == 3
    assert state["project_bytes"] == state["owner_bytes"] == 12


def test_concurrent_uploads_of_the_same_path_all_become_versions(alice, pid):
    payloads = [f"writer {i}".encode() for i in range(6)]
    replies = []

    def send(payload):
        replies.append(upload(alice, pid, "shared.txt", payload))

    threads = [threading.Thread(target=send, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status for r in replies) == [201] * 6
    item = alice.get(f"files/{pid}/").json()[0]
    assert len(item["versions"]) == 6
    assert {v["md5sum"] for v in item["versions"]} == {hashlib.md5(p).hexdigest() for p in payloads}
    state = stored_state(pid)
    assert len(state["s3"]) == 6 and state["owner_bytes"] == sum(map(len, payloads))


def test_subscription_reports_storage(alice, pid):
    upload(alice, pid, "a.txt", b"abc")
    body = alice.get("subscriptions/alice/current/").json()
    assert body["storage_used_bytes"] == 3 and body["active_storage_total_bytes"] > 0
    assert {"plan_display_name", "status", "active_since", "active_until",
            "plan_storage_threshold_warning_bytes", "plan_storage_threshold_critical_bytes"} <= body.keys()
    assert alice.get("subscriptions/bob/current/").status == 403


def test_deleting_the_project_removes_its_files(alice, pid):
    upload(alice, pid, "a.txt", b"abc")
    upload(alice, pid, "a.txt", b"abcd")
    assert alice.delete(f"projects/{pid}/").status == 204
    from chalicelib.adapters import aws, storage
    from chalicelib.config import settings
    from chalicelib.models import ProjectFile, User

    listing = aws.s3().list_object_versions(Bucket=settings.bucket, Prefix=storage.project_prefix(pid))
    assert not listing.get("Versions") and ProjectFile.count(pid) == 0
    assert User.get("alice").storage_used_bytes == 0
