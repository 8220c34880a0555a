"""Projects of organizations: who creates them, teams as collaborators, public roles, lists."""

import pytest


@pytest.fixture
def acme(users):
    """alice owns `acme`; bob is a member, carol a creator, erin an admin; dave is an outsider."""
    clients = {name: users(name) for name in ("alice", "bob", "carol", "dave", "erin")}
    alice = clients["alice"]
    assert alice.post("organizations/", json={"username": "acme"}).status == 201
    for name, role in (("bob", "member"), ("carol", "creator"), ("erin", "admin")):
        assert alice.post("members/acme/", json={"member": name, "role": role}).status == 201
    return clients


def test_who_creates_organization_projects(acme):
    assert acme["bob"].post("projects/", json={"name": "p", "owner": "acme"}).code == "permission_denied"
    assert acme["dave"].post("projects/", json={"name": "p", "owner": "acme"}).code == "permission_denied"
    by_admin = acme["erin"].create_project("by-admin", owner="acme")
    assert by_admin["owner"] == "acme"
    assert acme["erin"].get(f"collaborators/{by_admin['id']}/").json() == []
    by_creator = acme["carol"].create_project("by-creator", owner="acme")
    mine = acme["carol"].get(f"projects/{by_creator['id']}/").json()
    assert (mine["user_role"], mine["user_role_origin"]) == ("admin", "collaborator")
    rows = acme["alice"].get(f"collaborators/{by_creator['id']}/").json()
    assert [(r["collaborator"], r["role"]) for r in rows] == [("carol", "admin")]
    assert acme["carol"].get(f"projects/{by_admin['id']}/").status == 403
    owned = acme["alice"].get(f"projects/{by_admin['id']}/").json()
    assert (owned["user_role"], owned["user_role_origin"]) == ("admin", "organization_owner")
    assert acme["alice"].post("projects/", json={"name": "x", "owner": "@acme/t"}).status == 404


def test_a_team_collaborates_and_its_members_get_its_role(acme):
    alice, bob, dave = acme["alice"], acme["bob"], acme["dave"]
    alice.post("organizations/acme/teams/", json={"team": "field"})
    alice.post("organizations/acme/teams/field/members/", json={"member": "bob"})
    pid = alice.create_project("map", owner="acme")["id"]
    added = alice.post(f"collaborators/{pid}/", data={"collaborator": "@acme/field", "role": "editor"})
    assert added.status == 201 and added.json()["collaborator"] == "@acme/field"
    body = bob.get(f"projects/{pid}/").json()
    assert (body["user_role"], body["user_role_origin"]) == ("editor", "team_member")
    assert [(p["id"], p["user_role_origin"]) for p in bob.get("projects/").json()] == [(pid, "team_member")]
    assert bob.post(f"files/{pid}/data.csv/", files={"file": b"a,b"}).status == 201
    assert dave.get(f"projects/{pid}/").status == 403
    assert alice.patch(f"collaborators/{pid}/@acme%2Ffield/", json={"role": "reader"}).json()["role"] == (
        "reader")
    assert bob.get(f"projects/{pid}/").json()["user_role"] == "reader"
    alice.put("organizations/acme/teams/field/", json={"team": "crew"})
    assert [c["collaborator"] for c in alice.get(f"collaborators/{pid}/").json()] == ["@acme/crew"]
    assert alice.get(f"collaborators/{pid}/@acme%2Fcrew/").json()["role"] == "reader"
    assert bob.get(f"projects/{pid}/").json()["user_role_origin"] == "team_member"
    assert alice.delete("organizations/acme/teams/crew/members/bob/").status == 204
    assert bob.get(f"projects/{pid}/").status == 403  # gone at once
    assert bob.get("projects/").json() == []


def test_deleting_a_team_removes_its_collaborations(acme):
    alice, bob = acme["alice"], acme["bob"]
    alice.post("organizations/acme/teams/", json={"team": "field"})
    alice.post("organizations/acme/teams/field/members/", json={"member": "bob"})
    pid = alice.create_project("map", owner="acme")["id"]
    alice.post(f"collaborators/{pid}/", json={"collaborator": "@acme/field", "role": "editor"})
    assert alice.delete("organizations/acme/teams/field/").status == 204
    assert alice.get(f"collaborators/{pid}/").json() == []
    assert bob.get(f"projects/{pid}/").status == 403
    alice.post("organizations/acme/teams/", json={"team": "field"})  # a new team of that name
    assert alice.get("organizations/acme/teams/field/").json()["members"] == []
    assert bob.get(f"projects/{pid}/").status == 403


def test_collaborator_rules_on_organization_projects(acme, users):
    alice = acme["alice"]
    users("zed").post("organizations/", json={"username": "other"})
    other = acme["alice"].as_anonymous().login("zed", "correct horse battery")
    other.post("organizations/other/teams/", json={"team": "field"})
    pid = alice.create_project("map", owner="acme")["id"]
    own = alice.create_project("mine")["id"]

    def add(project, name):
        return alice.post(f"collaborators/{project}/", json={"collaborator": name, "role": "reader"})

    assert add(pid, "dave").code == "validation_error"  # not a member
    assert add(pid, "@other/field").code == "validation_error"  # another organization's team
    assert add(pid, "@acme/nosuch").code == "validation_error"
    assert add(pid, "acme").code == "validation_error"  # the owner itself
    assert add(pid, "alice").status == 201  # the organization's owner may be a collaborator
    assert add(pid, "bob").status == 201
    assert add(pid, "bob").code == "validation_error"
    assert add(own, "dave").status == 201  # a person's project: anyone
    alice.post("organizations/acme/teams/", json={"team": "field"})
    assert add(own, "@acme/field").code == "validation_error"  # teams only on their org's projects
    assert alice.get(f"collaborators/{pid}/@acme%2Fnosuch/").status == 404


def test_organization_projects_in_lists(acme):
    alice, bob, erin = acme["alice"], acme["bob"], acme["erin"]
    pid = alice.create_project("map", owner="acme")["id"]
    alice.create_project("mine")
    assert [(p["name"], p["user_role_origin"]) for p in erin.get("projects/").json()] == [
        ("map", "organization_admin")]
    assert {p["name"] for p in alice.get("projects/").json()} == {"map", "mine"}
    assert [p["name"] for p in alice.get("projects/?owner=acme").json()] == ["map"]
    assert bob.get("projects/").json() == []
    alice.post(f"collaborators/{pid}/", json={"collaborator": "bob", "role": "reporter"})
    assert [(p["name"], p["user_role"]) for p in bob.get("projects/").json()] == [("map", "reporter")]


def test_transfer_to_an_organization(acme):
    alice, bob = acme["alice"], acme["bob"]
    pid = alice.create_project("mine")["id"]
    alice.patch("users/acme/", json={"default_project_role_for_members": "reader"})
    assert bob.get(f"projects/{pid}/").status == 403
    assert alice.patch(f"projects/{pid}/", json={"owner": "acme"}).json()["owner"] == "acme"
    body = bob.get(f"projects/{pid}/").json()
    assert (body["user_role"], body["user_role_origin"]) == ("reader", "organization_member")
    assert alice.get(f"projects/{pid}/").json()["user_role_origin"] == "organization_owner"


@pytest.mark.parametrize("public_role", ["reader", "reporter", "editor"])
def test_public_projects_give_their_role_to_everyone(users, public_role):
    alice, dave = users("alice"), users("dave")
    pid = alice.create_project("open", is_public=True, public_collaborator_role=public_role)["id"]
    assert dave.get("projects/").json() == []
    listed = dave.get("projects/?include_public=1").json()
    assert [(p["id"], p["user_role"], p["user_role_origin"], p["public_collaborator_role"])
            for p in listed] == [(pid, public_role, "public", public_role)]
    assert [p["user_role"] for p in dave.get("projects/public/").json()] == [public_role]
    can_upload = dave.post(f"files/{pid}/data.csv/", files={"file": b"a"}).status
    assert can_upload == (201 if public_role == "editor" else 403)
    assert alice.as_anonymous().get(f"projects/{pid}/").status == 401
    assert alice.patch(f"projects/{pid}/", json={"public_collaborator_role": "manager"}).status == 400


def test_an_admin_demoted_to_member_loses_the_admins_access_at_once(acme):
    """An organization's admin sees and manages all its projects; demoted to member, erin keeps
    no more than a member has (no default role for members here: nothing), on every request
    from then on, the projects she made as an admin included."""
    alice, erin = acme["alice"], acme["erin"]
    by_owner = alice.create_project("by-owner", owner="acme")["id"]
    by_admin = erin.create_project("by-admin", owner="acme")["id"]
    for pid in (by_owner, by_admin):
        body = erin.get(f"projects/{pid}/").json()
        assert (body["user_role"], body["user_role_origin"]) == ("admin", "organization_admin")
    assert erin.post(f"files/{by_owner}/data.csv/", files={"file": b"a,b"}).status == 201
    assert sorted(p["id"] for p in erin.get("projects/").json()) == sorted([by_owner, by_admin])

    assert alice.patch("members/acme/erin/", json={"role": "member"}).json()["role"] == "member"
    for pid in (by_owner, by_admin):
        assert erin.get(f"projects/{pid}/").status == 403
        assert erin.get(f"files/{pid}/").status == 403
        assert erin.post(f"files/{pid}/more.csv/", files={"file": b"a,b"}).status == 403
        added = erin.post(f"collaborators/{pid}/", json={"collaborator": "dave", "role": "admin"})
        assert added.status == 403
        assert erin.delete(f"projects/{pid}/").status == 403
        assert erin.post("jobs/", json={"project_id": pid, "type": "package"}).status == 403
    assert erin.get("projects/").json() == []
    assert erin.post("projects/", json={"name": "again", "owner": "acme"}).code == "permission_denied"
    assert erin.post("members/acme/", json={"member": "dave"}).code == "permission_denied"
    assert alice.get(f"files/{by_owner}/").json()[0]["name"] == "data.csv"  # nothing lost
