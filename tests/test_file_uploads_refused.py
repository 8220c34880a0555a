"""Every refused upload answers with its code and leaves no object, item or count behind."""

import pytest

from tests.files_helpers import qgs, stored_state, upload


@pytest.fixture
def world(users):
    alice = users("alice")
    pid = alice.create_project("survey")["id"]
    upload(alice, pid, "project.qgs", qgs())
    upload(alice, pid, "kept.txt", b"kept")
    return alice, pid, users


def _refused(client, pid, reply, status, code):
    assert (reply.status, reply.code) == (status, code), reply.content


@pytest.mark.parametrize("path", [
    "..%2Fescape.txt", "a/..%2F..%2Fescape.txt", "%2E%2E/escape.txt", "%2Fetc%2Fpasswd",
    "nul%00byte.txt", "back%5Cslash.txt", "what%3F.txt", "trailing.%20", "CON",
])
def test_bad_names_are_validation_errors(world, path):
    alice, pid, _ = world
    before = stored_state(pid)
    reply = alice.post(f"files/{pid}/{path}/", files={"file": ("x", b"data")})
    _refused(alice, pid, reply, 400, "validation_error")
    assert stored_state(pid) == before


def test_missing_or_repeated_file_part(world):
    alice, pid, _ = world
    before = stored_state(pid)
    _refused(alice, pid, alice.post(f"files/{pid}/a.txt/", files={"other": ("x", b"data")}),
             400, "empty_content")
    _refused(alice, pid, alice.post(f"files/{pid}/a.txt/", data={"file": ""}), 400, "empty_content")
    two = [("file", ("x", b"one")), ("file", ("y", b"two"))]
    _refused(alice, pid, alice.post(f"files/{pid}/a.txt/", files=two), 400, "multiple_contents")
    assert stored_state(pid) == before


def test_a_second_qgis_project_file(world):
    alice, pid, _ = world
    before = stored_state(pid)
    _refused(alice, pid, upload(alice, pid, "other.qgz", qgs()), 400, "multiple_projects")
    assert stored_state(pid) == before
    assert upload(alice, pid, "project.qgs", qgs()).status == 201  # the same name is fine


def test_an_invalid_qgis_project_file(users):
    alice = users("alice")
    pid = alice.create_project("empty")["id"]
    _refused(alice, pid, upload(alice, pid, "broken.qgs", b"Hello!"), 400, "invalid_qgis_project_file")
    assert stored_state(pid)["s3"] == [] and stored_state(pid)["qgis"] is None


def test_qgis_file_into_shared_datasets(users):
    alice = users("alice")
    pid = alice.create_project("shared_datasets")["id"]
    _refused(alice, pid, upload(alice, pid, "p.qgs", qgs()), 400, "validation_error")
    assert stored_state(pid)["s3"] == []
    assert upload(alice, pid, "roads.gpkg", b"not checked here").status == 201
    sibling = alice.create_project("survey")
    assert sibling["shared_datasets_project_id"] == pid
    assert alice.get(f"projects/{pid}/").json()["status"] == "ok"  # needs no QGIS file


def test_restricted_files_need_a_manager(world):
    alice, pid, users = world
    users("eddie")
    alice.post(f"collaborators/{pid}/", data={"collaborator": "eddie", "role": "editor"})
    ed = alice.login("eddie", "correct horse battery")
    assert upload(ed, pid, "project.qgs", qgs()).status == 201  # not restricted yet
    alice.patch(f"projects/{pid}/", data={"has_restricted_projectfiles": "1"})
    before = stored_state(pid)
    for name, content in (("project.qgs", qgs()), ("project.qml", b"<qml/>"),
                          ("project_attachments.zip", b"zip")):
        _refused(ed, pid, upload(ed, pid, name, content), 403, "restricted_project_modification")
    assert stored_state(pid) == before
    assert upload(ed, pid, "data.csv", b"a,b").status == 201


def test_reporters_upload_attachments_only_and_readers_nothing(world):
    alice, pid, users = world
    for name, role in (("rep", "reporter"), ("rea", "reader")):
        users(name)
        alice.post(f"collaborators/{pid}/", data={"collaborator": name, "role": role})
    reporter = alice.login("rep", "correct horse battery")
    reader = alice.login("rea", "correct horse battery")
    before = stored_state(pid)
    _refused(reporter, pid, upload(reporter, pid, "data.csv", b"a"), 403, "permission_denied")
    _refused(reader, pid, upload(reader, pid, "DCIM/x.jpg", b"a"), 403, "permission_denied")
    assert stored_state(pid) == before
    assert upload(reporter, pid, "DCIM/x.jpg", b"photo").status == 201


def test_over_quota_is_402_and_stores_nothing(world):
    from chalicelib.models import User

    alice, pid, _ = world
    used = User.get("alice").storage_used_bytes
    User.get("alice").update(actions=[User.storage_quota_bytes.set(used + 10)])
    before = stored_state(pid)
    _refused(alice, pid, upload(alice, pid, "big.bin", b"x" * 11), 402, "over_quota")
    assert stored_state(pid) == before
    assert upload(alice, pid, "fits.bin", b"x" * 10).status == 201
    # QField's attachments are never lost to a full account, as in QFieldCloud.
    qfield = alice.with_token(None).login("alice", "correct horse battery")
    qfield.user_agent = "qfield|3.4|3.4|abc|"
    qfield = qfield.login("alice", "correct horse battery")
    assert upload(qfield, pid, "DCIM/field.jpg", b"y" * 50).status == 201


def test_the_direct_upload_limit_answers_413_naming_the_presigned_flow(world, override_settings):
    alice, pid, _ = world
    override_settings(max_direct_upload_bytes=2000)
    before = stored_state(pid)
    reply = upload(alice, pid, "large.bin", b"x" * 3000)
    _refused(alice, pid, reply, 413, "payload_too_large")
    assert f"uploads/{pid}/" in reply.json()["message"]
    assert stored_state(pid) == before
    assert upload(alice, pid, "small.bin", b"x" * 1000).status == 201


def test_unknown_project_and_bad_project_id(world):
    alice, _, _ = world
    _refused(alice, None, upload(alice, "11111111-1111-1111-1111-111111111111", "a.txt", b"a"),
             404, "object_not_found")
    _refused(alice, None, upload(alice, "pizza", "a.txt", b"a"), 400, "validation_error")
    anonymous = alice.as_anonymous()
    reply = anonymous.post("files/11111111-1111-1111-1111-111111111111/a.txt/", files={"file": b"a"})
    _refused(alice, None, reply,
             401, "not_authenticated")


def test_what_is_wrong_with_the_caller_is_answered_before_what_is_wrong_with_the_body(world):
    """The body is read before the caller is checked (to hash it meanwhile): the answers stay
    in the order of the checks."""
    alice, pid, users = world
    no_part = {"files": {"other": ("x", b"data")}}
    reader = users("rita")
    alice.post(f"collaborators/{pid}/", data={"collaborator": "rita", "role": "reader"})
    before = stored_state(pid)
    anonymous = alice.as_anonymous()
    _refused(alice, pid, anonymous.post(f"files/{pid}/a.txt/", **no_part), 401, "not_authenticated")
    _refused(alice, pid, reader.post(f"files/{pid}/a.txt/", **no_part), 403, "permission_denied")
    _refused(alice, pid, alice.post("files/11111111-1111-1111-1111-111111111111/a.txt/", **no_part),
             404, "object_not_found")
    _refused(alice, pid, alice.post(f"files/{pid}/a.txt/", **no_part), 400, "empty_content")
    assert stored_state(pid) == before
