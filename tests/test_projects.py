"""Projects: create, read, list with filters, ordering and pagination, update, delete."""

import threading
import uuid

import pytest

from tests.conftest import PASSWORD

SEED_FIELDS = {
    "id", "name", "owner", "description", "is_public", "private", "created_at", "updated_at",
    "data_last_packaged_at", "data_last_updated_at", "restricted_data_last_updated_at",
    "can_repackage", "needs_repackaging", "status", "user_role", "user_role_origin",
    "shared_datasets_project_id", "is_shared_datasets_project", "is_featured",
    "is_attachment_download_on_demand", "file_storage_bytes", "project_type",
    "public_collaborator_role",
}


def test_create_returns_201_with_every_field(users):
    alice = users("alice")
    reply = alice.post("projects/", data={"name": "Tree_Survey-2026.v1", "description": "trees"})
    assert reply.status == 201
    body = reply.json()
    assert body.keys() >= SEED_FIELDS
    assert uuid.UUID(body["id"])
    assert (body["owner"], body["name"], body["description"]) == ("alice", "Tree_Survey-2026.v1", "trees")
    assert (body["is_public"], body["private"], body["project_type"]) == (False, True, "regular")
    assert (body["user_role"], body["user_role_origin"]) == ("admin", "project_owner")
    assert body["status"] == "failed"  # no QGIS project file yet, as upstream
    assert body["file_storage_bytes"] == 0 and body["needs_repackaging"] is True


@pytest.mark.parametrize("fields, is_public", [
    ({"is_public": "1"}, True), ({"is_public": "True"}, True), ({"is_public": True}, True),
    ({"private": True}, False), ({"private": "false"}, True), ({}, False),
])
def test_visibility_from_is_public_or_private(users, fields, is_public):
    alice = users("alice")
    body = alice.create_project("p", **fields)
    assert body["is_public"] is is_public and body["private"] is (not is_public)


def test_description_is_never_null(users):
    alice = users("alice")
    assert alice.create_project("p")["description"] == ""


@pytest.mark.parametrize("name", ["", "with space", "é", "a/b", "x" * 256, "semi;colon"])
def test_invalid_names_are_refused(users, name):
    alice = users("alice")
    reply = alice.post("projects/", json={"name": name})
    assert (reply.status, reply.code) == (400, "validation_error")


def test_names_are_unique_per_owner(users):
    alice, bob = users("alice"), users("bob")
    alice.create_project("same")
    reply = alice.post("projects/", json={"name": "same"})
    assert (reply.status, reply.code) == (400, "project_already_exists")
    assert bob.post("projects/", json={"name": "same"}).status == 201


def test_concurrent_creates_of_the_same_name_let_exactly_one_win(users):
    alice = users("alice")
    replies = []
    barrier = threading.Barrier(8)

    def create():
        barrier.wait()
        replies.append(alice.post("projects/", json={"name": "race"}))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(reply.status for reply in replies)
    assert statuses == [201] + [400] * 7
    assert {r.code for r in replies if r.status == 400} == {"project_already_exists"}
    assert [p["name"] for p in alice.get("projects/").json()] == ["race"]


def test_shared_datasets_name_sets_the_type_and_siblings_point_at_it(users):
    alice = users("alice")
    shared = alice.create_project("shared_datasets")
    assert shared["project_type"] == "shared_datasets" and shared["is_shared_datasets_project"]
    other = alice.create_project("other")
    assert other["shared_datasets_project_id"] == shared["id"]


def test_a_project_with_a_qgis_file_cannot_become_shared_datasets(users):
    from chalicelib.models import Project

    alice = users("alice")
    pid = alice.create_project("survey")["id"]
    Project.get(pid).update(actions=[Project.the_qgis_file_name.set("p.qgs")])
    for name in ("shared_datasets", "Shared_Datasets"):  # compared in any case, as upstream
        refused = alice.patch(f"projects/{pid}/", json={"name": name})
        assert (refused.status, refused.code) == (400, "qgis_project_file_not_allowed")
    shared = alice.create_project("shared_datasets")["id"]
    renamed = alice.patch(f"projects/{shared}/", json={"name": "old_shared"}).json()
    assert renamed["project_type"] == "regular" and renamed["shared_datasets_project_id"] is None


def test_create_for_someone_else_is_refused_and_unknown_owner_is_404(users):
    alice = users("alice")
    users("bob")
    assert alice.post("projects/", json={"name": "p", "owner": "bob"}).status == 403
    reply = alice.post("projects/", json={"name": "p", "owner": "ghost"})
    assert (reply.status, reply.code) == (404, "object_not_found")
    assert alice.post("projects/", json={"name": "p", "owner": "ALICE"}).status == 201


def _names(reply):
    return [project["name"] for project in reply.json()]


def test_list_shows_own_and_shared_projects_but_public_ones_only_on_request(users):
    alice, bob = users("alice"), users("bob")
    alice.create_project("mine")
    bob.create_project("bobs_public", is_public=True)
    shared = bob.create_project("bobs_shared")
    bob.post(f"collaborators/{shared['id']}/", data={"collaborator": "alice", "role": "editor"})

    assert sorted(_names(alice.get("projects/"))) == ["bobs_shared", "mine"]
    with_public = ["bobs_public", "bobs_shared", "mine"]
    assert sorted(_names(alice.get("projects/?include_public=1"))) == with_public
    assert sorted(_names(alice.get("projects/?include-public=1"))) == with_public
    assert sorted(_names(alice.get("projects/?include-public=true"))) == ["bobs_shared", "mine"]
    assert sorted(_names(alice.get("projects/?include_public=0"))) == ["bobs_shared", "mine"]
    roles = {p["name"]: (p["user_role"], p["user_role_origin"])
             for p in alice.get("projects/?include_public=1").json()}
    assert roles == {"mine": ("admin", "project_owner"), "bobs_shared": ("editor", "collaborator"),
                     "bobs_public": ("reader", "public")}
    assert _names(bob.get("projects/")) == ["bobs_public", "bobs_shared"]  # own public stays


def test_list_filters_owner_name_and_search(users):
    alice, bob = users("alice"), users("bob")
    alice.create_project("Trees")
    alice.create_project("roads")
    bob.create_project("tree_nursery", is_public=True)
    assert sorted(_names(alice.get("projects/?owner=BOB&include_public=1"))) == ["tree_nursery"]
    assert _names(alice.get("projects/?name=trees")) == ["Trees"]
    assert sorted(_names(alice.get("projects/?search=tree&include_public=1"))) == ["Trees", "tree_nursery"]
    assert sorted(_names(alice.get("projects/?search=bob&include_public=1"))) == ["tree_nursery"]
    assert _names(alice.get("projects/?search=nothing")) == []


def test_ordering_by_name_owner_and_created_at(users):
    alice = users("alice")
    for name in ("b", "c", "a"):
        alice.create_project(name)
    alice.patch(f"projects/{alice.get('projects/?name=c').json()[0]['id']}/", data={"is_featured": "1"})
    assert _names(alice.get("projects/")) == ["c", "a", "b"]  # featured first, then by name
    assert _names(alice.get("projects/?ordering=name")) == ["a", "b", "c"]
    assert _names(alice.get("projects/?ordering=-name")) == ["c", "b", "a"]
    assert _names(alice.get("projects/?ordering=created_at")) == ["b", "c", "a"]
    assert _names(alice.get("projects/?ordering=-created_at")) == ["a", "c", "b"]
    assert _names(alice.get("projects/?ordering=owner,-name")) == ["c", "b", "a"]


def test_pagination_headers_follow_qfieldcloud(users):
    alice = users("alice")
    for i in range(5):
        alice.create_project(f"p{i}")
    reply = alice.get("projects/")
    assert len(reply.json()) == 5 and "X-Total-Count" not in reply.headers

    first = alice.get("projects/?limit=2")
    assert _names(first) == ["p0", "p1"]
    # Before the last page, the default order's X-Total-Count is a lower bound (docs/api.md).
    assert first.headers["X-Total-Count"] == "3"
    assert first.headers["X-Next-Page"].startswith(
        "http://testserver/api/v1/projects/?limit=2&offset=2&cursor=")
    assert "X-Previous-Page" not in first.headers

    second = alice.get(first.headers["X-Next-Page"])
    assert _names(second) == ["p2", "p3"]
    assert second.headers["X-Previous-Page"] == "http://testserver/api/v1/projects/?limit=2"

    last = alice.get(second.headers["X-Next-Page"])
    assert _names(last) == ["p4"]
    assert last.headers["X-Total-Count"] == "5"
    assert "X-Next-Page" not in last.headers
    assert last.headers["X-Previous-Page"].endswith("limit=2&offset=2")
    assert alice.get("projects/?limit=2&offset=9").json() == []
    assert len(alice.get("projects/?offset=3").json()) == 5  # offset alone does not paginate
    filtered = alice.get("projects/?limit=1&search=p")
    assert "search=p" in filtered.headers["X-Next-Page"]


def test_public_projects_endpoint(users):
    alice, bob = users("alice"), users("bob")
    alice.create_project("private_one")
    alice.create_project("public_one", is_public=True)
    assert _names(bob.get("projects/public/")) == ["public_one"]
    assert bob.get("projects/public/").json()[0]["user_role_origin"] == "public"
    assert alice.get("projects/public/").json()[0]["user_role_origin"] == "project_owner"


def test_patch_and_put(users):
    alice = users("alice")
    project = alice.create_project("old")
    path = f"projects/{project['id']}/"
    reply = alice.patch(path, data={"description": "new", "is_public": "True"})
    assert reply.status == 200
    assert (reply.json()["description"], reply.json()["is_public"]) == ("new", True)
    assert alice.patch(path, json={"name": "renamed"}).json()["name"] == "renamed"
    assert alice.post("projects/", json={"name": "old"}).status == 201  # the old name is free
    reply = alice.patch(path, json={"name": "old"})
    assert (reply.status, reply.code) == (400, "project_already_exists")
    reply = alice.put(path, json={"description": "no name"})
    assert (reply.status, reply.code) == (400, "validation_error")
    assert alice.put(path, json={"name": "put_name", "private": False}).json()["is_public"] is True
    fetched = alice.get(path).json()
    assert (fetched["name"], fetched["description"]) == ("put_name", "new")


def test_owner_transfer_moves_the_project(users):
    alice, bob = users("alice"), users("bob")
    project = alice.create_project("moving")
    reply = alice.patch(f"projects/{project['id']}/", data={"owner": "bob"})
    assert reply.status == 200 and reply.json()["owner"] == "bob"
    assert "user_role" not in reply.json()  # alice has no role left
    assert alice.get(f"projects/{project['id']}/").status == 403
    assert _names(bob.get("projects/")) == ["moving"]
    assert alice.post("projects/", json={"name": "moving"}).status == 201


@pytest.mark.parametrize("role", ["manager", "editor"])
def test_only_the_admin_role_may_transfer_a_project_so_a_manager_cannot_take_it(users, role):
    alice, mallory = users("alice"), users("mallory")
    project = alice.create_project("kept")
    alice.post(f"collaborators/{project['id']}/", json={"collaborator": "mallory", "role": role})
    for body in ({"owner": "mallory"}, {"owner": "alice", "name": "kept"}, {"owner": "MALLORY"}):
        reply = mallory.patch(f"projects/{project['id']}/", json=body)
        if body["owner"] == "alice":  # naming the current owner is no transfer
            assert reply.status in (200, 403), reply.content
            continue
        assert (reply.status, reply.code) == (403, "permission_denied"), reply.content
    assert alice.get(f"projects/{project['id']}/").json()["owner"] == "alice"
    if role == "manager":  # the rest of the update is still a manager's
        assert mallory.patch(f"projects/{project['id']}/", json={"description": "ok"}).status == 200


def test_a_collaborator_with_the_admin_role_may_transfer(users):
    alice, carol = users("alice"), users("carol")
    project = alice.create_project("handed_over")
    alice.post(f"collaborators/{project['id']}/", json={"collaborator": "carol", "role": "admin"})
    reply = carol.patch(f"projects/{project['id']}/", json={"owner": "carol"})
    assert reply.status == 200 and reply.json()["owner"] == "carol"


def test_owner_transfer_over_the_recipients_quota_is_402(users):
    from chalicelib.models import Project, User

    alice = users("alice")
    users("bob")
    project = alice.create_project("heavy")
    Project.get(project["id"]).update(actions=[Project.file_storage_bytes.set(1000)])
    User.get("alice").update(actions=[User.storage_used_bytes.set(1000)])
    User.get("bob").update(actions=[User.storage_quota_bytes.set(999)])
    reply = alice.patch(f"projects/{project['id']}/", data={"owner": "bob"})
    assert (reply.status, reply.code) == (402, "over_quota")
    assert alice.get(f"projects/{project['id']}/").json()["owner"] == "alice"
    assert (User.get("alice").storage_used_bytes, User.get("bob").storage_used_bytes) == (1000, 0)
    User.get("bob").update(actions=[User.storage_quota_bytes.set(1000)])
    assert alice.patch(f"projects/{project['id']}/", data={"owner": "bob"}).status == 200
    assert (User.get("alice").storage_used_bytes, User.get("bob").storage_used_bytes) == (0, 1000)


def test_delete_removes_everything_of_the_project(users):
    from chalicelib.adapters import aws, storage
    from chalicelib.config import settings
    from chalicelib.models import Collaborator, Project, ProjectName

    alice = users("alice")
    users("bob")
    project = alice.create_project("doomed")
    pid = project["id"]
    alice.post(f"collaborators/{pid}/", data={"collaborator": "bob", "role": "reader"})
    key = storage.file_key(pid, "a.txt")
    for body in (b"one", b"two"):
        aws.s3().put_object(Bucket=settings.bucket, Key=key, Body=body)
    aws.s3().delete_object(Bucket=settings.bucket, Key=key)  # leaves a delete marker too

    assert alice.delete(f"projects/{pid}/").status == 204
    assert alice.get(f"projects/{pid}/").status == 404
    assert Project.count(pid) == 0 and Collaborator.count(pid) == 0
    assert ProjectName.count("alice/doomed") == 0
    listing = aws.s3().list_object_versions(Bucket=settings.bucket, Prefix=storage.project_prefix(pid))
    assert not listing.get("Versions") and not listing.get("DeleteMarkers")
    assert alice.post("projects/", json={"name": "doomed"}).status == 201


def test_thumbnail_upload_and_download(users):
    import io

    import requests
    from PIL import Image

    alice = users("alice")
    project = alice.create_project("pictured")
    pid = project["id"]
    assert alice.get(f"files/thumbnails/{pid}/").status == 404
    png = io.BytesIO()
    Image.new("RGB", (32, 16), "green").save(png, "PNG")
    reply = alice.post(f"projects/{pid}/thumbnail/", files={"thumbnail": ("t.png", png.getvalue())})
    assert reply.status == 204
    reply = alice.get(f"files/thumbnails/{pid}/")
    assert reply.status == 302
    downloaded = requests.get(reply.headers["Location"], timeout=10)
    assert downloaded.content == png.getvalue()
    assert downloaded.headers["Content-Type"] == "image/png"
    bad = alice.post(f"projects/{pid}/thumbnail/", files={"thumbnail": ("t.png", b"not an image")})
    assert (bad.status, bad.code) == (400, "validation_error")
    none = alice.post(f"projects/{pid}/thumbnail/", files={"other": ("t.png", png.getvalue())})
    assert (none.status, none.code) == (400, "empty_content")


def test_a_user_sees_their_own_login_data(users, api):
    alice = users("alice")
    assert alice.get("auth/user/").json()["email"] == "alice@example.com"
    assert api.login("alice", PASSWORD).token != alice.token


@pytest.mark.parametrize("headers", [
    {"Host": "evil.example", "X-Forwarded-Proto": "javascript"},
    {"Host": "evil.example/x?", "X-Forwarded-Proto": "https"},
    {"X-Forwarded-Host": "evil.example", "Forwarded": "host=evil.example;proto=javascript"},
])
def test_pagination_links_come_from_the_configured_public_url_not_from_client_headers(
    users, override_settings, headers
):
    override_settings(public_url="https://qfc.example.org/")
    alice = users("alice")
    for i in range(3):
        alice.create_project(f"p{i}")
    page = alice.get("projects/?limit=1&offset=1", headers=headers)
    assert page.headers["X-Next-Page"].split("&cursor=")[0] == \
        "https://qfc.example.org/api/v1/projects/?limit=1&offset=2"
    assert page.headers["X-Previous-Page"] == "https://qfc.example.org/api/v1/projects/?limit=1"


def test_without_a_configured_url_links_use_the_domain_api_gateway_reports(api, override_settings):
    from chalicelib.services import accounts
    from devstack.gateway import ApiGateway

    override_settings(public_url=None)
    gateway = ApiGateway(api.gateway.app, api.gateway.handler, domain_name="abc.execute-api.example")
    accounts.create_user("alice", "correct horse battery")
    alice = api.__class__(gateway).login("alice", "correct horse battery")
    for i in range(2):
        alice.create_project(f"p{i}")
    page = alice.get("projects/?limit=1", headers={"Host": "evil.example", "X-Forwarded-Proto": "x"})
    assert page.headers["X-Next-Page"].split("&cursor=")[0] == \
        "https://abc.execute-api.example/api/v1/projects/?limit=1&offset=1"
