"""`users/`: create (staff), search, read, update, the caller's organizations (docs/api.md)."""

import pytest


@pytest.fixture
def root(users):
    return users("root", is_staff=True)


def test_staff_create_users_and_a_duplicate_is_409(root, api):
    created = root.post("users/", data={"username": "carol", "password": "long enough pw",
                                        "email": "carol@example.com"})
    assert created.status == 201
    assert created.json() == {"username": "carol", "type": 1, "full_name": "", "avatar_url": None,
                              "username_display": "carol"}
    assert api.login("carol", "long enough pw").get("auth/user/").json()["email"] == "carol@example.com"
    again = root.post("users/", data={"username": "Carol", "password": "long enough pw",
                                      "email": "other@example.com"})
    assert (again.status, again.code) == (409, "object_already_exists")


@pytest.mark.parametrize("fields", [
    {"username": "dave", "password": "long enough pw"},  # no email
    {"username": "dave", "password": "long enough pw", "email": "not-an-email"},
    {"username": "dave", "password": "short", "email": "dave@example.com"},
    {"username": "9dave", "password": "long enough pw", "email": "dave@example.com"},
    {"username": "projects", "password": "long enough pw", "email": "dave@example.com"},
    {"username": "dave", "password": "long enough pw", "email": "root@example.com"},  # taken
])
def test_invalid_new_users_are_400(root, fields):
    reply = root.post("users/", data=fields)
    assert (reply.status, reply.code) == (400, "validation_error"), reply.content


def test_only_staff_create_users(users):
    bob = users("bob")
    reply = bob.post("users/", data={"username": "x1x", "password": "long enough pw", "email": "x@x.org"})
    assert reply.code == "permission_denied"


def test_search_by_username_prefix(users):
    alice = users("alice")
    for name in ("alex", "alfred", "bob", "Alina"):
        users(name)
    alice.post("organizations/", json={"username": "alpine"})
    found = [u["username"] for u in alice.get("users/?q=AL").json()]
    assert found == ["alex", "alfred", "alice", "Alina", "alpine"]
    types = {u["username"]: u["type"] for u in alice.get("users/?q=al").json()}
    assert types["alpine"] == 2 and types["alex"] == 1
    assert [u["username"] for u in alice.get("users/?q=al&exclude_organizations=1").json()] == [
        "alex", "alfred", "alice", "Alina"]
    assert alice.get("users/").json() == []  # no query: nobody is listed
    paged = alice.get("users/?q=al&limit=2")
    assert [u["username"] for u in paged.json()] == ["alex", "alfred"]
    assert paged.headers["X-Total-Count"] == "5" and "X-Next-Page" in paged.headers


def test_search_within_a_project_or_an_organization(users):
    alice, bob = users("alice"), users("bob")
    for name in ("alex", "alfred"):
        users(name)
    alice.post("organizations/", json={"username": "acme"})
    alice.post("members/acme/", json={"member": "alex"})
    alice.post("organizations/acme/teams/", json={"team": "alpha"})
    pid = alice.create_project("map", owner="acme")["id"]
    alice.post(f"collaborators/{pid}/", json={"collaborator": "alex", "role": "editor"})

    def names(path):
        return [u["username"] for u in alice.get(path).json()]

    assert names(f"users/?q=al&project={pid}") == ["alfred", "alice", "@acme/alpha"]
    assert names(f"users/?q=al&project={pid}&exclude_teams=1") == ["alfred", "alice"]
    assert names(f"users/?project={pid}&invert=1") == ["acme", "alex"]
    assert names("users/?q=a&organization=acme") == ["alfred", "@acme/alpha"]
    assert names("users/?organization=acme&invert=1") == ["acme", "alex", "alice"]
    assert alice.get(f"users/?q=alpha&project={pid}").json() == [{
        "username": "@acme/alpha", "type": 3, "full_name": "", "avatar_url": None,
        "username_display": "alpha"}]
    assert bob.get(f"users/?project={pid}").status == 403  # no role on the project


def test_read_and_update_oneself(users):
    alice, bob = users("alice"), users("bob")
    me = alice.get("users/alice/").json()
    assert me["email"] == "alice@example.com" and me["type"] == 1
    assert bob.get("users/alice/").json() == {"username": "alice", "type": 1, "full_name": "",
                                              "avatar_url": None, "username_display": "alice"}
    changed = alice.patch("users/alice/", json={"first_name": "Alice", "last_name": "Liddell"})
    assert changed.json()["full_name"] == "Alice Liddell"
    assert alice.put("users/alice/", json={"username": "alice", "email": "new@example.com"}).json()[
        "email"] == "new@example.com"
    assert alice.patch("users/alice/", json={"username": "alicia"}).code == "validation_error"
    assert bob.patch("users/alice/", json={"first_name": "x"}).code == "permission_denied"
    assert alice.get("users/nobody/").code == "object_not_found"


def test_an_organizations_default_role_for_members(users):
    alice, bob = users("alice"), users("bob")
    alice.post("organizations/", json={"username": "acme"})
    alice.post("members/acme/", json={"member": "bob"})
    pid = alice.create_project("map", owner="acme")["id"]
    assert bob.get(f"projects/{pid}/").status == 403
    assert alice.patch("users/acme/", json={"default_project_role_for_members": "editor"}).json()[
        "default_project_role_for_members"] == "editor"
    body = bob.get(f"projects/{pid}/").json()
    assert (body["user_role"], body["user_role_origin"]) == ("editor", "organization_member")
    alice.patch("users/acme/", json={"default_project_role_for_members": None})
    assert bob.get(f"projects/{pid}/").status == 403
    assert alice.patch("users/alice/", json={"default_project_role_for_members": "reader"}).code == (
        "validation_error")
