"""Every role (and a stranger, and an anonymous caller) against every project action so far,
on a private and on a public project.

The expectations are written out here from QFieldCloud's permission matrix (reference §2.3), not
derived from chalicelib.permissions, so that a wrong entry in the code's table fails a test.
"""

import io
import uuid

import pytest
from PIL import Image

from tests.files_helpers import qgs

ROLES = ["owner", "admin", "manager", "editor", "reporter", "reader", "stranger", "anonymous"]
RANK = {"reader": 1, "reporter": 2, "editor": 3, "manager": 4, "admin": 5, "owner": 5}


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG")
    return buffer.getvalue()

# action: (request, minimum role, status when allowed)
ACTIONS = {
    "list_files": (lambda c, pid: c.get(f"files/{pid}/"), "reader", 200),
    "download_file": (lambda c, pid: c.get(f"files/{pid}/data.csv/"), "reader", 302),
    "file_metadata": (lambda c, pid: c.get(f"files/metadata/{pid}/data.csv/"), "reader", 200),
    "upload_attachment": (lambda c, pid: c.post(f"files/{pid}/DCIM/new.jpg/", files={"file": b"jpg"}),
                          "reporter", 201),
    "upload_file": (lambda c, pid: c.post(f"files/{pid}/new.csv/", files={"file": b"a,b"}), "editor", 201),
    "upload_project_file": (lambda c, pid: c.post(f"files/{pid}/project.qgs/", files={"file": qgs()}),
                            "editor", 201),
    "begin_presigned_upload": (lambda c, pid: c.post(f"uploads/{pid}/", json={"name": "x.tif", "size": 9}),
                               "editor", 201),
    "delete_file": (lambda c, pid: c.delete(f"files/{pid}/data.csv/"), "editor", 204),
    "get_project": (lambda c, pid: c.get(f"projects/{pid}/"), "reader", 200),
    "patch_project": (lambda c, pid: c.patch(f"projects/{pid}/", data={"description": "x"}),
                      "manager", 200),
    "put_project": (lambda c, pid: c.put(f"projects/{pid}/", data={"name": f"renamed-{pid}"}),
                    "manager", 200),
    "delete_project": (lambda c, pid: c.delete(f"projects/{pid}/"), "manager", 204),
    "upload_thumbnail": (lambda c, pid: c.post(f"projects/{pid}/thumbnail/",
                                               files={"thumbnail": ("t.png", _png())}), "reporter", 204),
    "download_thumbnail": (lambda c, pid: c.get(f"files/thumbnails/{pid}/"), "reader", 302),
    "list_collaborators": (lambda c, pid: c.get(f"collaborators/{pid}/"), "manager", 200),
    "add_collaborator": (lambda c, pid: c.post(f"collaborators/{pid}/",
                                               data={"collaborator": "newcomer", "role": "reader"}),
                         "manager", 201),
    "get_collaborator": (lambda c, pid: c.get(f"collaborators/{pid}/reader/"), "manager", 200),
    "patch_collaborator": (lambda c, pid: c.patch(f"collaborators/{pid}/reader/", data={"role": "editor"}),
                           "manager", 200),
    "remove_collaborator": (lambda c, pid: c.delete(f"collaborators/{pid}/reader/"), "manager", 204),
}


def _effective_role(role: str, is_public: bool) -> str | None:
    if role in RANK:
        return role
    if role == "stranger" and is_public:
        return "reader"  # every authenticated user reads a public project
    return None


@pytest.fixture
def world(users, api):
    clients = {"owner": users("proprietor")}
    for role in ROLES[1:-1]:
        clients[role] = users(role)
    users("newcomer")
    clients["anonymous"] = api.as_anonymous()

    def make_project(is_public: bool) -> str:
        """A project of `proprietor` with one collaborator per role and a thumbnail (set up through
        the models: the HTTP paths for these are tested elsewhere, and this runs 350 times)."""
        from chalicelib import storage
        from chalicelib.models import Collaborator, Project

        owner = clients["owner"]
        pid = owner.create_project(f"p-{uuid.uuid4()}", is_public=is_public)["id"]
        assert owner.post(f"files/{pid}/data.csv/", files={"file": b"x,y"}).status == 201
        assert owner.post(f"files/{pid}/project.qgs/", files={"file": qgs()}).status == 201
        with Collaborator.batch_write() as batch:
            for role in ROLES[1:6]:
                batch.save(Collaborator(pid, role, collaborator=role, role=role))
        version = storage.put_object(storage.thumbnail_key(pid), _png(), "image/png")
        Project.get(pid).update(actions=[Project.thumbnail_version.set(version)])
        return pid

    return clients, make_project


READ_ONLY = {"get_project", "download_thumbnail", "list_collaborators", "get_collaborator",
             "list_files", "download_file", "file_metadata"}


@pytest.mark.parametrize("is_public", [False, True], ids=["private", "public"])
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_permission_matrix(world, action, is_public):
    clients, make_project = world
    request, minimum, success = ACTIONS[action]
    outcomes = {}
    pid = make_project(is_public)
    for role in reversed(ROLES):  # least privileged first: refusals change nothing
        reply = request(clients[role], pid)
        effective = _effective_role(role, is_public)
        if role == "anonymous":
            expected = (401, "not_authenticated")
        elif effective is not None and RANK[effective] >= RANK[minimum]:
            expected = (success, None)
        else:
            expected = (403, "permission_denied")
        outcomes[role] = ((reply.status, reply.code), expected)
        if reply.status < 300 and action not in READ_ONLY:
            pid = make_project(is_public)  # the action changed the project: start afresh
    wrong = {role: got for role, (got, expected) in outcomes.items() if got != expected}
    assert not wrong, f"{action}: got {wrong}, expected {({r: e for r, (_, e) in outcomes.items()})}"


def test_a_stranger_cannot_see_a_private_project_anywhere(world):
    clients, make_project = world
    pid = make_project(False)
    stranger = clients["stranger"]
    assert pid not in [p["id"] for p in stranger.get("projects/?include_public=1").json()]
    assert pid not in [p["id"] for p in stranger.get("projects/public/").json()]
    assert stranger.get(f"projects/{pid}/").status == 403
    assert stranger.get(f"collaborators/{pid}/").status == 403
    assert clients["owner"].get(f"projects/{pid}/").json()["description"] == ""


# --- Account actions (reference §2.4): who may act on an account --------------------------------
# caller: the account's owner itself, another person, a staff member, an anonymous caller.
ACCOUNT_CALLERS = ["self", "other", "staff", "anonymous"]
# action: (request on alice's account, callers allowed, status when allowed)
ACCOUNT_ACTIONS = {
    "read_subscription": (lambda c, upload: c.get("subscriptions/alice/current/"), {"self"}, 200),
    "create_project_for_the_account": (
        lambda c, upload: c.post("projects/", json={"name": f"p-{uuid.uuid4()}", "owner": "alice"}),
        {"self"}, 201),
    "use_an_upload_session": (lambda c, upload: c.get(f"uploads/{upload[0]}/{upload[1]}/"), {"self"}, 200),
}


@pytest.mark.parametrize("action", sorted(ACCOUNT_ACTIONS))
def test_account_permission_matrix(users, api, action):
    alice = users("alice")
    clients = {"self": alice, "other": users("bob"), "staff": users("root", is_staff=True),
               "anonymous": api.as_anonymous()}
    pid = alice.create_project("shared")["id"]
    for name in ("bob", "root"):  # both may upload to the project: only the session is alice's
        added = alice.post(f"collaborators/{pid}/", json={"collaborator": name, "role": "editor"})
        assert added.status == 201
    upload_id = alice.post(f"uploads/{pid}/", json={"name": "big.tif", "size": 9}).json()["upload_id"]
    request, allowed, success = ACCOUNT_ACTIONS[action]
    outcomes = {}
    for caller in ACCOUNT_CALLERS:
        reply = request(clients[caller], (pid, upload_id))
        if caller == "anonymous":
            expected = 401
        elif caller in allowed:
            expected = success
        else:  # someone else's upload session is not even shown to exist
            expected = 404 if action == "use_an_upload_session" else 403
        outcomes[caller] = (reply.status, expected)
    wrong = {caller: got for caller, (got, expected) in outcomes.items() if got != expected}
    assert not wrong, f"{action}: {outcomes}"
