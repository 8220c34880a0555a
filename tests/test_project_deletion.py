"""Deleting a project while its users keep uploading: nothing of it may remain, and the owner's
storage counter must come back to what is really stored (docs/security.md, Project deletion)."""

from __future__ import annotations

import threading

import pytest

from tests.files_helpers import upload
from tests.waiting import wait_until


def leftovers(project_id: str) -> dict:
    """Every trace of a project in every table and in S3, and its owner's counter."""
    from chalicelib.adapters import aws, storage
    from chalicelib.config import settings
    from chalicelib.models import Collaborator, Project, ProjectFile, UploadSession, User

    listing = aws.s3().list_object_versions(Bucket=settings.bucket, Prefix=storage.project_prefix(project_id))
    multiparts = aws.s3().list_multipart_uploads(Bucket=settings.bucket,
                                                 Prefix=storage.project_prefix(project_id))
    return {
        "project": Project.count(project_id),
        "files": ProjectFile.count(project_id),
        "collaborators": Collaborator.count(project_id),
        "uploads": UploadSession.by_project.count(project_id),
        "s3": len(listing.get("Versions", [])) + len(listing.get("DeleteMarkers", [])),
        "multipart_uploads": len(multiparts.get("Uploads", [])),
        "owner_bytes": int(User.get("alice").storage_used_bytes),
    }


NOTHING = {"project": 0, "files": 0, "collaborators": 0, "uploads": 0, "s3": 0, "multipart_uploads": 0,
           "owner_bytes": 0}


class HeldStores:
    """Stores into S3 that, once `hold()` is called, wait until `release()`: uploads are caught in
    flight when the deletion comes, their quota counted and their bytes not stored yet."""

    def __init__(self):
        self.open = threading.Event()
        self.open.set()
        self.lock = threading.Lock()
        self.waiting = 0

    def hold(self) -> None:
        self.open.clear()

    def release(self) -> None:
        self.open.set()

    def wrap(self, put):
        def held_put(*args, **kwargs):
            if not self.open.is_set():
                with self.lock:
                    self.waiting += 1
                self.open.wait()
            return put(*args, **kwargs)

        return held_put


@pytest.fixture
def held_stores(monkeypatch) -> HeldStores:
    from chalicelib.adapters import storage

    held = HeldStores()
    monkeypatch.setattr(storage, "put_object", held.wrap(storage.put_object))
    yield held
    held.release()  # never leave an uploader waiting


def test_deleting_a_project_while_uploads_run_leaves_nothing_and_corrects_the_quota(alice, users,
                                                                                   held_stores):
    """Six uploaders go on while the project is deleted; each of them has an upload in flight (its
    quota counted, its bytes being stored) when the deletion and its purge run."""
    users("bob")
    pid = alice.create_project("doomed")["id"]
    alice.post(f"collaborators/{pid}/", json={"collaborator": "bob", "role": "editor"})
    for n in range(5):
        assert upload(alice, pid, f"data/{n}.csv", b"x" * 10_000).status == 201
    stop = threading.Event()
    statuses: dict[int, list[int]] = {worker: [] for worker in range(6)}

    def keep_uploading(worker: int) -> None:
        n = 0
        while not stop.is_set():
            statuses[worker].append(upload(alice, pid, f"DCIM/{worker}/{n % 3}.jpg", b"y" * 50_000).status)
            n += 1

    uploaders = [threading.Thread(target=keep_uploading, args=(w,)) for w in statuses]
    for thread in uploaders:
        thread.start()
    try:
        wait_until(lambda: all(201 in seen for seen in statuses.values()), "the uploads did not begin")
        held_stores.hold()
        wait_until(lambda: held_stores.waiting == len(uploaders), "the uploads were not caught in flight")
        assert alice.delete(f"projects/{pid}/").status == 204  # its purge runs before the answer
        held_stores.release()
        wait_until(lambda: all(404 in seen for seen in statuses.values()), "uploads still succeed")
    finally:
        held_stores.release()
        stop.set()
        for thread in uploaders:
            thread.join()

    assert {status for seen in statuses.values() for status in seen} == {201, 404}
    for seen in statuses.values():  # once refused, refused for good
        assert 201 not in seen[seen.index(404):]
    assert alice.get(f"projects/{pid}/").status == 404
    assert leftovers(pid) == NOTHING


@pytest.fixture
def purge_later(monkeypatch):
    """Deletion asked for, its purge not run yet: what requests meet in between."""
    from chalicelib.adapters import background

    started = []
    monkeypatch.setattr(background, "start", lambda function, **arguments: started.append(arguments))
    return started


def test_a_project_being_deleted_is_gone_at_once_and_takes_no_more_writes(alice, users, purge_later):
    import io

    from PIL import Image

    from chalicelib.services import project_deletion

    users("bob")
    pid = alice.create_project("doomed")["id"]
    assert upload(alice, pid, "a.txt", b"kept until the purge").status == 201
    assert alice.delete(f"projects/{pid}/").status == 204
    assert purge_later == [{"project_id": pid}]
    assert alice.get(f"projects/{pid}/").status == 404
    assert alice.get("projects/").json() == []
    assert alice.post("projects/", json={"name": "doomed"}).status == 201  # the name is free
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")
    for reply in (
        upload(alice, pid, "b.txt", b"late"),
        alice.post(f"projects/{pid}/thumbnail/", files={"thumbnail": ("t.png", png.getvalue())}),
        alice.post(f"collaborators/{pid}/", json={"collaborator": "bob", "role": "reader"}),
        alice.post(f"uploads/{pid}/", json={"name": "big.bin", "size": 10}),
        alice.delete(f"projects/{pid}/"),
    ):
        assert (reply.status, reply.code) == (404, "object_not_found"), reply.content
    project_deletion.purge(pid)
    assert leftovers(pid) == NOTHING


def test_writes_that_started_before_the_mark_cannot_commit_after_it(alice, users, purge_later):
    """Each write checks the mark in its own transaction: a project read before the deletion
    was asked for does not let a thumbnail, a collaborator, a session or a version in."""
    import io

    from PIL import Image

    from chalicelib.errors import ObjectNotFound
    from chalicelib.models import Project, User
    from chalicelib.rules.checksums import of_stream
    from chalicelib.rules.permissions import project_role
    from chalicelib.services import collaborators, files, project_deletion, thumbnails, uploads
    from chalicelib.services.auth import Caller
    from chalicelib.services.inputs import CollaboratorAdd, UploadBegin

    users("bob")
    pid = alice.create_project("doomed")["id"]
    stale = Project.get(pid)  # read by requests still running when the deletion comes
    caller = Caller(User.get("alice"), "sdk")
    role = project_role(caller.user, stale)
    project_deletion.request_deletion(Project.get(pid))
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")
    content = io.BytesIO(b"late bytes")
    attempts = [
        lambda: thumbnails.store(stale, png, len(png.getvalue())),
        lambda: collaborators.add_collaborator(caller, stale, CollaboratorAdd(collaborator="bob")),
        lambda: uploads.begin(caller, stale, role, UploadBegin(name="big.bin", size=10)),
        lambda: files.upload(caller, files.check_upload(stale, role, "late.txt"), files.receive(content)),
    ]
    for attempt in attempts:
        with pytest.raises(ObjectNotFound):
            attempt()
    assert of_stream(io.BytesIO(b"")).size == 0
    project_deletion.purge(pid)
    assert leftovers(pid) == NOTHING


def test_a_presigned_upload_completed_after_the_deletion_gives_its_quota_back(alice, purge_later):
    import requests

    from chalicelib.services import project_deletion

    pid = alice.create_project("doomed")["id"]
    assert upload(alice, pid, "a.txt", b"x" * 1000).status == 201
    started = alice.post(f"uploads/{pid}/", json={"name": "big.bin", "size": 5000}).json()
    for part in started["parts"]:
        assert requests.put(part["url"], data=b"y" * part["size"], timeout=10).ok
    assert alice.delete(f"projects/{pid}/").status == 204
    reply = alice.post(f"uploads/{pid}/{started['upload_id']}/complete/")
    assert reply.status == 404
    project_deletion.purge(pid)
    assert leftovers(pid) == NOTHING


def test_a_completion_running_when_the_project_is_deleted_undoes_itself_once(alice, monkeypatch):
    """The completion passed its checks, then the deletion came: its commit fails, and the quota
    it reserved is given back exactly once (it used to be released twice)."""
    import requests

    from chalicelib.models import Project
    from chalicelib.services import files, project_deletion

    pid = alice.create_project("doomed")["id"]
    assert upload(alice, pid, "a.txt", b"x" * 1000).status == 201
    started = alice.post(f"uploads/{pid}/", json={"name": "big.bin", "size": 5000}).json()
    for part in started["parts"]:
        requests.put(part["url"], data=b"y" * part["size"], timeout=10)
    record = files.record_version

    def deleted_meanwhile(*args, **kwargs):
        monkeypatch.setattr(project_deletion.background, "start", lambda function, **arguments: None)
        project_deletion.request_deletion(Project.get(pid))
        return record(*args, **kwargs)

    monkeypatch.setattr(files, "record_version", deleted_meanwhile)
    reply = alice.post(f"uploads/{pid}/{started['upload_id']}/complete/")
    assert (reply.status, reply.code) == (404, "object_not_found")
    from chalicelib.models import User

    assert int(User.get("alice").storage_used_bytes) == 1000
    project_deletion.purge(pid)
    assert leftovers(pid) == NOTHING


class FunctionStopped(BaseException):
    """The Lambda function stopped where it was (its time ran out): nothing after runs."""


@pytest.mark.parametrize("stopped_in", ["assembling the parts", "recording the version"])
def test_a_completion_cut_off_holding_its_claim_then_its_project_deleted_gives_its_quota_back(
        alice, monkeypatch, stopped_in):
    """The completion counted the upload against the quota and was cut off while it held the
    session (fresh: no retry may take it over for minutes); then the project is deleted. The
    purge must give that quota back: the project's gone, so no retry of the completion ever will."""
    import requests

    from chalicelib.adapters import storage
    from chalicelib.models import UploadSession, User
    from chalicelib.services import files

    pid = alice.create_project("doomed")["id"]
    assert upload(alice, pid, "a.txt", b"x" * 1000).status == 201
    started = alice.post(f"uploads/{pid}/", json={"name": "big.bin", "size": 5000}).json()
    for part in started["parts"]:
        assert requests.put(part["url"], data=b"y" * part["size"], timeout=30).ok

    def stop(*args, **kwargs):
        raise FunctionStopped

    with monkeypatch.context() as patch:
        if stopped_in == "assembling the parts":
            patch.setattr(storage, "complete_multipart_upload", stop)
        else:
            patch.setattr(files, "record_version", stop)
        with pytest.raises(FunctionStopped):
            alice.post(f"uploads/{pid}/{started['upload_id']}/complete/")
    session = UploadSession.get(started["upload_id"])
    assert (session.state, session.quota_counted) == ("completing", True)
    assert int(User.get("alice").storage_used_bytes) == 6000

    assert alice.delete(f"projects/{pid}/").status == 204  # its purge runs before the answer
    assert leftovers(pid) == NOTHING


def test_a_completion_running_while_the_purge_runs_undoes_itself_once(alice, monkeypatch):
    """The purge drops the session of a completion that is still running (its claim is fresh);
    the completion then fails at its commit: the quota comes back once, not twice."""
    import requests

    from chalicelib.models import Project, User
    from chalicelib.services import files, project_deletion

    pid = alice.create_project("doomed")["id"]
    assert upload(alice, pid, "a.txt", b"x" * 1000).status == 201
    started = alice.post(f"uploads/{pid}/", json={"name": "big.bin", "size": 5000}).json()
    for part in started["parts"]:
        assert requests.put(part["url"], data=b"y" * part["size"], timeout=30).ok
    record = files.record_version

    def deleted_and_purged_meanwhile(*args, **kwargs):
        project_deletion.request_deletion(Project.get(pid))  # the purge runs inline, now
        return record(*args, **kwargs)

    monkeypatch.setattr(files, "record_version", deleted_and_purged_meanwhile)
    reply = alice.post(f"uploads/{pid}/{started['upload_id']}/complete/")
    assert (reply.status, reply.code) == (404, "object_not_found")
    assert int(User.get("alice").storage_used_bytes) == 0
    project_deletion.purge(pid)
    assert leftovers(pid) == NOTHING


def test_an_interrupted_purge_is_finished_by_the_next_run(alice, monkeypatch, purge_later):
    from chalicelib.adapters import storage
    from chalicelib.services import project_deletion

    pid = alice.create_project("doomed")["id"]
    for n in range(30):  # more than one batch of file items
        upload(alice, pid, f"{n}.txt", b"x" * 100)
    assert alice.delete(f"projects/{pid}/").status == 204
    everything = storage.delete_everything_under

    def crash(prefix):
        raise RuntimeError("the function was stopped")

    monkeypatch.setattr(storage, "delete_everything_under", crash)
    with pytest.raises(RuntimeError):
        project_deletion.purge(pid)
    partly = leftovers(pid)
    assert partly["files"] == 0 and partly["owner_bytes"] == 0 and partly["s3"] == 30
    monkeypatch.setattr(storage, "delete_everything_under", everything)
    project_deletion.purge(pid)
    project_deletion.purge(pid)  # a third run finds nothing to do
    assert leftovers(pid) == NOTHING


# On AWS the purge runs in an asynchronous invocation of the function itself, through moto's
# Lambda: tests/test_infra.py, test_on_aws_a_deletion_invokes_the_function_itself_as_its_role_allows…


def test_a_purge_an_earlier_version_queued_still_runs_after_an_upgrade(monkeypatch):
    """Task events name their task; before the services had a folder of their own they named it
    by its module too (`chalicelib.project_deletion.purge`), and Lambda may deliver such an event
    to the new version."""
    from chalicelib.adapters import background
    from chalicelib.services import project_deletion

    ran = []
    monkeypatch.setattr(project_deletion, "purge", lambda project_id: ran.append(project_id))
    monkeypatch.setitem(background._TASKS, "purge", project_deletion.purge)
    handler = background.dispatching(lambda event, context: {"statusCode": 200})
    event = {background.TASK_KEY: "chalicelib.project_deletion.purge", "arguments": {"project_id": "p1"}}
    assert handler(event, None)["done"] and ran == ["p1"]
