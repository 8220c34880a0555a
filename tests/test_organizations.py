"""Organizations, their members and teams, black-box (docs/api.md, "Endpoints" and "Roles")."""

import pytest


@pytest.fixture
def org(users):
    """alice owns `acme`; bob and carol are people; dave is an outsider."""
    clients = {name: users(name) for name in ("alice", "bob", "carol", "dave")}
    created = clients["alice"].post("organizations/", json={"username": "acme", "email": "a@acme.org"})
    assert created.status == 201, created.content
    return clients


def test_creating_an_organization_makes_the_caller_its_owner(org):
    alice = org["alice"]
    body = alice.get("users/acme/").json()
    assert body["type"] == 2 and body["organization_owner"] == "alice"
    assert (body["membership_role"], body["membership_role_origin"]) == ("admin", "organization_owner")
    assert body["members"] == [] and body["teams"] == []
    assert [o["username"] for o in alice.get("users/alice/organizations/").json()] == ["acme"]
    assert alice.get("members/acme/").json() == []  # the owner is not listed as a member


def test_organization_names_share_the_username_namespace(org):
    assert org["bob"].post("organizations/", json={"username": "alice"}).code == "object_already_exists"
    assert org["bob"].post("organizations/", json={"username": "ACME"}).status == 409
    assert org["bob"].post("organizations/", json={"username": "1bad"}).status == 400
    assert org["bob"].post("organizations/", json={"username": "projects"}).status == 400


def test_members_add_get_patch_remove(org):
    alice = org["alice"]
    added = alice.post("members/acme/", data={"member": "bob", "role": "admin", "is_public": "True"})
    assert added.status == 201
    assert added.json() == {"organization": "acme", "member": "bob", "role": "admin", "is_public": True}
    assert alice.post("members/acme/", json={"member": "carol"}).json()["role"] == "member"
    listed = org["dave"].get("members/acme/").json()  # any signed-in user may read the members
    assert [(m["member"], m["role"]) for m in listed] == [("bob", "admin"), ("carol", "member")]
    assert org["dave"].get("members/acme/carol/").json()["is_public"] is False
    assert alice.patch("members/acme/carol/", data={"role": "creator"}).json()["role"] == "creator"
    assert alice.put("members/acme/carol/", json={"role": "member", "is_public": True}).json()[
        "is_public"] is True
    assert alice.put("members/acme/carol/", json={"is_public": True}).code == "validation_error"
    assert org["bob"].delete("members/acme/carol/").status == 204  # an admin manages members
    assert alice.get("members/acme/carol/").status == 404
    assert [m["member"] for m in alice.get("members/acme/").json()] == ["bob"]
    assert alice.get("users/acme/").json()["members"] == ["bob"]  # public members only


def test_member_errors(org):
    alice, carol = org["alice"], org["carol"]
    assert alice.post("members/acme/", json={"member": "nobody"}).code == "object_not_found"
    assert alice.post("members/acme/", json={"member": "alice"}).code == "validation_error"
    assert alice.post("members/acme/", json={"member": "carol"}).status == 201
    assert alice.post("members/acme/", json={"member": "carol"}).code == "validation_error"
    assert alice.post("members/acme/", json={"member": "bob", "role": "owner"}).code == "validation_error"
    assert carol.post("members/acme/", json={"member": "bob"}).code == "permission_denied"
    assert carol.delete("members/acme/carol/").code == "permission_denied"
    assert alice.delete("members/acme/alice/").status == 404  # the owner is no member
    assert alice.get("members/nosuch/").code == "object_not_found"
    assert alice.get("members/bob/").code == "object_not_found"  # a person, not an organization
    assert alice.as_anonymous().get("members/acme/").status == 401


def test_the_plans_member_limit(org, override_settings):
    override_settings(max_organization_members=1)
    alice = org["alice"]
    assert alice.post("members/acme/", json={"member": "bob"}).status == 201
    refused = alice.post("members/acme/", json={"member": "carol"})
    assert (refused.status, refused.code) == (403, "organization_has_max_number_of_members")
    assert alice.delete("members/acme/bob/").status == 204
    assert alice.post("members/acme/", json={"member": "carol"}).status == 201
    assert alice.get("subscriptions/acme/current/").json()["max_organization_members"] == 1


def test_teams_create_get_rename_delete(org):
    alice = org["alice"]
    alice.post("members/acme/", json={"member": "bob"})
    created = alice.post("organizations/acme/teams/", data={"team": "surveyors"})
    assert created.status == 201
    assert created.json() == {"team": "surveyors", "organization": "acme", "members": []}
    assert alice.post("organizations/acme/teams/", json={"team": "Surveyors"}).code == "api_error"
    assert alice.post("organizations/acme/teams/", json={"team": ""}).status == 400
    assert alice.post("organizations/acme/teams/surveyors/members/", data={"member": "bob"}).json() == {
        "member": "bob"}
    assert org["dave"].get("organizations/acme/teams/").json() == [
        {"team": "surveyors", "organization": "acme", "members": ["bob"]}]
    renamed = alice.put("organizations/acme/teams/surveyors/", data={"team": "field"})
    assert renamed.json()["team"] == "field"
    assert alice.get("organizations/acme/teams/surveyors/").status == 404
    assert alice.get("organizations/acme/teams/field/").json()["members"] == ["bob"]
    assert alice.patch("organizations/acme/teams/field/", json={"team": "x"}).code == "permission_denied"
    alice.post("organizations/acme/teams/", json={"team": "office"})
    assert alice.put("organizations/acme/teams/field/", json={"team": "office"}).code == "api_error"
    assert alice.delete("organizations/acme/teams/field/").status == 204
    assert [t["team"] for t in alice.get("organizations/acme/teams/").json()] == ["office"]
    assert alice.post("organizations/acme/teams/", json={"team": "field"}).status == 201  # name free


def test_team_members(org):
    alice = org["alice"]
    alice.post("members/acme/", json={"member": "bob"})
    alice.post("members/acme/", json={"member": "carol"})
    alice.post("organizations/acme/teams/", json={"team": "t1"})
    path = "organizations/acme/teams/t1/members/"
    assert alice.post(path, json={"member": "carol@example.com"}).json() == {"member": "carol"}
    assert alice.post(path, json={"member": "alice"}).status == 201  # the owner may join
    assert alice.post(path, json={"member": "bob"}).status == 201
    assert alice.post(path, json={"member": "bob"}).code == "api_error"  # already in it
    assert alice.post(path, json={"member": "nobody"}).code == "api_error"
    assert alice.post(path, json={"member": "dave"}).code == "validation_error"  # not a member
    assert org["bob"].post(path, json={"member": "carol"}).code == "permission_denied"
    assert [m["member"] for m in org["dave"].get(path).json()] == ["alice", "bob", "carol"]
    assert alice.delete(path + "bob/").status == 204
    assert alice.delete(path + "bob/").status == 404
    assert [m["member"] for m in alice.get(path).json()] == ["alice", "carol"]


def test_removing_a_member_removes_their_teams_and_collaborations(org):
    alice = org["alice"]
    alice.post("members/acme/", json={"member": "bob"})
    alice.post("organizations/acme/teams/", json={"team": "t1"})
    alice.post("organizations/acme/teams/t1/members/", json={"member": "bob"})
    org_project = alice.create_project("map", owner="acme")["id"]
    own_project = alice.create_project("mine")["id"]
    for pid in (org_project, own_project):
        added = alice.post(f"collaborators/{pid}/", json={"collaborator": "bob", "role": "editor"})
        assert added.status == 201
    assert alice.delete("members/acme/bob/").status == 204
    assert alice.get("organizations/acme/teams/t1/").json()["members"] == []
    assert [c["collaborator"] for c in alice.get(f"collaborators/{org_project}/").json()] == []
    assert [c["collaborator"] for c in alice.get(f"collaborators/{own_project}/").json()] == ["bob"]
    assert org["bob"].get(f"projects/{org_project}/").status == 403
    assert alice.post("members/acme/", json={"member": "bob"}).status == 201  # may come back
    assert alice.get("organizations/acme/teams/t1/").json()["members"] == []


def test_organization_details_are_for_its_people_only(org):
    alice, bob = org["alice"], org["bob"]
    assert bob.get("users/acme/").status == 404
    alice.post("members/acme/", json={"member": "bob", "role": "member"})
    body = bob.get("users/acme/").json()
    assert (body["membership_role"], body["membership_role_origin"], body["membership_is_public"]) == (
        "member", "organization_member", False)
    assert [o["username"] for o in bob.get("users/bob/organizations/").json()] == ["acme"]
    assert bob.get("users/alice/organizations/").code == "permission_denied"
    assert bob.patch("users/acme/", json={"email": "x@acme.org"}).code == "permission_denied"
    assert alice.patch("users/acme/", json={"email": "x@acme.org"}).json()["email"] == "x@acme.org"


def test_subscription_of_an_organization(org):
    alice, bob = org["alice"], org["bob"]
    assert bob.get("subscriptions/acme/current/").status == 403
    alice.post("members/acme/", json={"member": "bob"})
    body = bob.get("subscriptions/acme/current/").json()
    assert body["active_storage_total_bytes"] > 0 and body["storage_used_bytes"] == 0


def test_an_organization_may_share_its_owners_email(users, api):
    alice = users("alice")
    assert alice.post("organizations/", json={"username": "acme", "email": "alice@example.com"}).status == 201
    login = api.post("auth/login/", data={"email": "alice@example.com", "password": "correct horse battery"})
    assert login.status == 200 and login.json()["username"] == "alice"
    assert alice.patch("users/acme/", json={"email": "ALICE@example.com"}).status == 200
    assert api.post("auth/login/", data={"email": "alice@example.com",
                                         "password": "correct horse battery"}).status == 200
    from chalicelib.models import User

    assert User.get("acme").email_key is None  # not in the index logins by email read


def test_members_come_a_page_at_a_time_without_the_owner(org, users):
    alice = org["alice"]
    names = sorted(["bob", "carol", "dave", *(f"m{i:02}" for i in range(7))])
    for name in names:
        if name not in org:
            users(name)
        assert alice.post("members/acme/", json={"member": name}).status == 201
    whole = [m["member"] for m in alice.get("members/acme/").json()]
    assert sorted(whole) == names and "alice" not in whole
    for limit in (1, 3, 4, 10):
        seen, offset = [], 0
        while True:  # as the SDK pages: only limit and offset of X-Next-Page are kept
            page = alice.get(f"members/acme/?limit={limit}&offset={offset}")
            assert page.headers["X-Total-Count"] == str(len(names))
            seen += [m["member"] for m in page.json()]
            if "X-Next-Page" not in page.headers:
                break
            offset += limit
        assert seen == whole, limit
    following, url = [], "members/acme/?limit=4"
    while url:  # as a client that follows X-Next-Page whole (cursor included)
        page = alice.get(url)
        following += [m["member"] for m in page.json()]
        url = page.headers.get("X-Next-Page")
    assert following == whole
