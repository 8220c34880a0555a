"""`GET projects/` in the default order, paged from the sorted indexes (chalicelib/services/project_list):
the same projects, roles and order as the whole list sorted in memory, whatever the page size and
however the client follows the pages."""

from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.http import pagination

PAGE_SIZES = (1, 2, 3, 7, 250)


def _world(users):
    """Projects of several owners (one featured, names differing only by case, a unicode name
    from an older version), an organization with an admin, a team and a default role for
    members, another one seen only through a team, person and team collaborations, public
    projects and one being deleted."""
    from chalicelib.maintenance.reorder import reorder_project
    from chalicelib.models import Project, User
    from chalicelib.models.base import utcnow

    clients = {name: users(name) for name in ("alice", "bob", "carol", "dave", "Erin")}
    alice, bob, carol, dave, erin = (clients[n] for n in ("alice", "bob", "carol", "dave", "Erin"))
    ids = {}
    for owner, names in ((alice, ["Map", "map", "b", "Zeta", "a-1"]), (bob, ["bee", "Bee"]),
                         (carol, ["c1", "c2"]), (dave, ["pub", "Pub2", "priv"]), (erin, ["e"])):
        for name in names:
            public = name.lower().startswith("pub") or name in ("b", "e")
            ids[(owner.username, name)] = owner.create_project(name, is_public=public)["id"]
    assert alice.patch(f"projects/{ids[('alice', 'Zeta')]}/", json={"is_featured": True}).status == 200
    assert dave.patch(f"projects/{ids[('dave', 'Pub2')]}/", json={"is_featured": True}).status == 200
    unicode_id = ids[("carol", "c2")]  # renamed outside the API's rules, as an older version could
    Project.get(unicode_id).update(actions=[Project.name.set("Ünïcode ñame")])
    reorder_project(Project.get(unicode_id))

    for org, owner in (("acme", alice), ("globex", dave)):
        assert owner.post("organizations/", json={"username": org}).status == 201
    alice.post("members/acme/", json={"member": "carol", "role": "admin"})
    alice.post("members/acme/", json={"member": "bob"})
    dave.post("members/globex/", json={"member": "bob"})
    dave.post("members/globex/", json={"member": "Erin"})
    dave.post("organizations/globex/teams/", json={"team": "crew"})
    dave.post("organizations/globex/teams/crew/members/", json={"member": "bob"})
    for name in ("o1", "O2", "o3"):
        ids[("acme", name)] = alice.create_project(name, owner="acme")["id"]
    for name in ("g1", "g2", "G3", "g4"):
        ids[("globex", name)] = dave.create_project(name, owner="globex")["id"]
    User.get("acme").update(actions=[User.default_project_role_for_members.set("reader")])

    def collaborate(owner, project, collaborator, role):
        reply = owner.post(f"collaborators/{ids[project]}/", data={"collaborator": collaborator,
                                                                    "role": role})
        assert reply.status == 201, reply.content

    collaborate(alice, ("alice", "Map"), "bob", "editor")
    collaborate(alice, ("alice", "b"), "bob", "reporter")
    collaborate(carol, ("carol", "c2"), "bob", "manager")
    collaborate(dave, ("dave", "priv"), "Erin", "reader")
    collaborate(alice, ("acme", "O2"), "bob", "editor")  # above the organization's default role
    collaborate(dave, ("globex", "g1"), "@globex/crew", "editor")
    collaborate(dave, ("globex", "G3"), "@globex/crew", "reporter")
    collaborate(dave, ("globex", "g4"), "@globex/crew", "reader")
    collaborate(dave, ("globex", "g4"), "bob", "manager")
    # Being deleted: gone from every list at once.
    Project.get(ids[("globex", "g4")]).update(actions=[Project.deleting_since.set(utcnow())])
    # A collaboration renamed afterwards: the rows follow the project.
    assert carol.patch(f"projects/{ids[('carol', 'c1')]}/", json={"name": "A-renamed"}).status == 200
    collaborate(carol, ("carol", "c1"), "Erin", "editor")
    assert carol.patch(f"projects/{ids[('carol', 'c1')]}/", json={"is_featured": True}).status == 200
    return clients


def _expected(client, include_public: bool) -> list[tuple]:
    """The whole visible set through the in-memory path (any `ordering`), sorted as the brief of
    the default order says: featured first, then owner key, name in any case, id."""
    flag = "&include_public=1" if include_public else ""
    listed = client.get(f"projects/?ordering=created_at{flag}").json()
    listed.sort(key=lambda p: (not p["is_featured"], p["owner"].lower(), p["name"].casefold(), p["id"]))
    return [_seen(p) for p in listed]


def _seen(project: dict) -> tuple:
    return project["id"], project["name"], project["user_role"], project["user_role_origin"]


def _follow(client, first: str, keep_cursor: bool) -> list[tuple]:
    """Every page from `first` on, following X-Next-Page as given, or keeping only its limit and
    offset (the SDK)."""
    found, url, pages = [], first, 0
    while url:
        reply = client.get(url)
        assert reply.status == 200, reply.content
        found += [_seen(p) for p in reply.json()]
        url = reply.headers.get("X-Next-Page")
        pages += 1
        assert pages < 100
        if url and not keep_cursor:
            query = parse_qs(urlsplit(url).query)
            assert "cursor" in query
            kept = "&".join(f"{key}={values[0]}" for key, values in query.items() if key != "cursor")
            url = f"{first.split('?')[0]}?{kept}"
        if not url:
            assert int(reply.headers["X-Total-Count"]) == len(found)
    return found


@pytest.mark.parametrize("include_public", [False, True])
def test_paged_default_order_is_the_sorted_whole_list(users, include_public):
    clients = _world(users)
    flag = "include_public=1&" if include_public else ""
    for name, client in clients.items():
        expected = _expected(client, include_public)
        assert expected, name
        assert [_seen(p) for p in client.get(f"projects/?{flag}").json()] == expected, name
        for size in PAGE_SIZES:
            first = f"projects/?{flag}limit={size}"
            assert _follow(client, first, keep_cursor=True) == expected, (name, size)
            assert _follow(client, first, keep_cursor=False) == expected, (name, size)
            pagination._bookmarks.clear()  # offsets found by reading the pages before them
            assert _follow(client, first, keep_cursor=False) == expected, (name, size)


def test_the_sdk_and_qfield_forms(users):
    clients = _world(users)
    bob = clients["bob"]
    sdk = bob.get("projects/?include-public=0&limit=2&offset=2")
    assert [_seen(p) for p in sdk.json()] == _expected(bob, False)[2:4]
    qfield = bob.get("projects/?limit=250&offset=0&include_public=1")
    assert [_seen(p) for p in qfield.json()] == _expected(bob, True)
    assert "X-Next-Page" not in qfield.headers
    assert bob.get("projects/?limit=250&offset=250").json() == []


def test_public_projects_page_in_the_default_order(users):
    clients = _world(users)
    for name, client in clients.items():
        whole = client.get("projects/public/?ordering=created_at").json()
        whole.sort(key=lambda p: (not p["is_featured"], p["owner"].lower(), p["name"].casefold(), p["id"]))
        expected = [_seen(p) for p in whole]
        assert [_seen(p) for p in client.get("projects/public/").json()] == expected, name
        for size in (1, 3):
            assert _follow(client, f"projects/public/?limit={size}", keep_cursor=True) == expected
            assert _follow(client, f"projects/public/?limit={size}", keep_cursor=False) == expected


def test_a_row_left_behind_by_a_cut_off_rename_is_skipped_then_repaired(users):
    from chalicelib.maintenance.reorder import reorder_all
    from chalicelib.models import Collaborator, Project

    alice, bob = users("alice"), users("bob")
    pid = alice.create_project("before")["id"]
    alice.post(f"collaborators/{pid}/", data={"collaborator": "bob", "role": "editor"})
    # The rename committed; the rewrite of its rows did not happen.
    project = Project.get(pid)
    project.update(actions=[Project.name.set("after"), Project.list_order.set(
        project.current_list_order().replace("before", "after"))])
    assert bob.get("projects/?limit=5").json() == []  # never listed twice, nor at a stale place
    reorder_all()
    assert Collaborator.get(pid, "bob").project_order == Project.get(pid).list_order
    assert [p["name"] for p in bob.get("projects/?limit=5").json()] == ["after"]
