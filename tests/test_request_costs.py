"""A request costs a small, fixed number of AWS calls, whatever the amount of data, and never a
DynamoDB Scan. Calls are counted at botocore's client, under PynamoDB and boto3 alike."""

from collections import Counter
from contextlib import contextmanager

import botocore.client

from tests.files_helpers import upload


@contextmanager
def counted_calls():
    calls: Counter = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counting(client, operation, params):
        calls[operation] += 1
        return original(client, operation, params)

    botocore.client.BaseClient._make_api_call = counting
    try:
        yield calls
    finally:
        botocore.client.BaseClient._make_api_call = original


def _world(users, size: int):
    """alice with `size` projects and `size` files in one, bob collaborating on one project.

    alice also owns the organization `acme` with `size` members, `size` teams and `size`
    projects, and `size` other organizations exist; bob is a member of `acme` and in one team,
    which collaborates on every `acme` project; carol is an admin of `acme`. What grows is
    everything but the callers' own ties."""
    from chalicelib.models import Collaborator, Membership, Team, User
    from chalicelib.models.collaborators import team_collaborator_key
    from chalicelib.services import accounts, organizations

    alice, bob, carol = users("alice"), users("bob"), users("carol")
    ids = [alice.create_project(f"p{i}")["id"] for i in range(size)]
    for i in range(size):
        upload(alice, ids[0], f"data/file{i}.csv", b"a,b")
    alice.post(f"collaborators/{ids[0]}/", data={"collaborator": "bob", "role": "editor"})

    assert alice.post("organizations/", json={"username": "acme"}).status == 201
    alice.post("members/acme/", json={"member": "bob"})
    alice.post("members/acme/", json={"member": "carol", "role": "admin"})
    for i in range(size):
        member = accounts.create_user(f"member{i}", "long enough password")
        Membership("acme", member.username_key, organization="acme", member=member.username).save()
        other = organizations.create_organization(member, f"other{i}").organization
        Membership(other.username_key, "bob2", organization=other.username, member="bob2").save()
        alice.post("organizations/acme/teams/", json={"team": f"team{i}"})
    User("acme").update(actions=[User.members_count.set(size + 2)])
    alice.post("organizations/acme/teams/team0/members/", json={"member": "bob"})
    team_id = User.get("@acme/team0").team_id
    org_ids = [alice.create_project(f"o{i}", owner="acme")["id"] for i in range(size)]
    with Collaborator.batch_write() as batch:
        for pid in org_ids:
            batch.save(Collaborator(pid, team_collaborator_key(team_id), collaborator="@acme/team0",
                                    role="editor"))
    assert Team.count("acme") == size
    return {"alice": alice, "bob": bob, "carol": carol, "pid": ids[0], "org_pid": org_ids[0]}


REQUESTS = {
    "get project (owner)": lambda w: w["alice"].get(f"projects/{w['pid']}/"),
    "get project (collaborator)": lambda w: w["bob"].get(f"projects/{w['pid']}/"),
    "list files": lambda w: w["alice"].get(f"files/{w['pid']}/"),
    "download": lambda w: w["alice"].get(f"files/{w['pid']}/data/file0.csv/"),
    "metadata": lambda w: w["alice"].get(f"files/metadata/{w['pid']}/data/file0.csv/"),
    "upload": lambda w: upload(w["bob"], w["pid"], "data/new.csv", b"x"),
    "delete file": lambda w: w["alice"].delete(f"files/{w['pid']}/data/file1.csv/"),
    "list collaborators": lambda w: w["alice"].get(f"collaborators/{w['pid']}/"),
    "list projects (collaborator, team member)": lambda w: w["bob"].get("projects/"),
    "list projects (owner of them all)": lambda w: w["alice"].get("projects/"),
    "list projects (organization admin)": lambda w: w["carol"].get("projects/"),
    "patch project": lambda w: w["alice"].patch(f"projects/{w['pid']}/", data={"description": "d"}),
    "get project (team member)": lambda w: w["bob"].get(f"projects/{w['org_pid']}/"),
    "get project (organization admin)": lambda w: w["carol"].get(f"projects/{w['org_pid']}/"),
    "list files (team member)": lambda w: w["bob"].get(f"files/{w['org_pid']}/"),
    "list members": lambda w: w["bob"].get("members/acme/"),
    "a page of members": lambda w: w["bob"].get("members/acme/?limit=2&offset=2"),
    "list teams": lambda w: w["bob"].get("organizations/acme/teams/"),
    "team members": lambda w: w["bob"].get("organizations/acme/teams/team0/members/"),
    "the caller's organizations": lambda w: w["bob"].get("users/bob/organizations/"),
    "search users": lambda w: w["bob"].get("users/?q=member1"),
    "add a team member": lambda w: w["alice"].post("organizations/acme/teams/team1/members/",
                                                   json={"member": "carol"}),
    "remove a team member": lambda w: w["alice"].delete("organizations/acme/teams/team1/members/carol/"),
    "remove a member": lambda w: w["alice"].delete("members/acme/member0/"),
    "add a member": lambda w: w["alice"].post("members/acme/", json={"member": "member0"}),
}


def _costs(users, size: int) -> dict[str, Counter]:
    world = _world(users, size)
    costs = {}
    for name, request in REQUESTS.items():
        with counted_calls() as calls:
            reply = request(world)
        assert reply.status < 400, (name, reply.content)
        costs[name] = calls
    return costs


def test_costs_are_small_and_the_same_for_small_and_large_worlds(users, aws):
    small = {name: dict(calls) for name, calls in _costs(users, 3).items()}
    for name, calls in small.items():
        assert "Scan" not in calls, name
        assert sum(calls.values()) <= 12, (name, calls)

    from chalicelib.models import ALL_MODELS
    from devstack.resources import ensure_all

    for model in ALL_MODELS:  # a fresh world, ten times larger
        model.delete_table()
    ensure_all()
    large = {name: dict(calls) for name, calls in _costs(users, 30).items()}
    assert small == large


def _paged_costs(users, size: int) -> dict[str, dict]:
    """The calls of paged requests (and of file changes) on a project of `size` files of ten
    versions each, `size` jobs and `size` deltas, written straight into the tables."""
    from chalicelib.http import pagination
    from tests.large_project import add_deltas, add_files, add_jobs

    alice, bob = users(f"alice{size}"), users(f"bob{size}")
    pid = alice.create_project("big")["id"]
    alice.post(f"collaborators/{pid}/", data={"collaborator": bob.username, "role": "editor"})
    add_files(pid, size, versions=10)
    add_jobs(pid, size)
    deltafile = add_deltas(pid, size)[0]
    pagination._bookmarks.clear()
    costs: dict[str, dict] = {}
    replies = {}

    def cost(name: str, request) -> None:
        with counted_calls() as calls:
            reply = request()
        assert reply.status < 400, (name, reply.content)
        replies[name] = reply
        costs[name] = dict(calls)

    def next_of(name: str):
        return lambda: bob.get(replies[name].headers["X-Next-Page"])

    cost("files page", lambda: bob.get(f"files/{pid}/?limit=5"))
    cost("files next page (cursor)", next_of("files page"))
    cost("files page by offset (SDK, QField)", lambda: bob.get(f"files/{pid}/?limit=5&offset=5"))
    cost("jobs page", lambda: bob.get(f"jobs/?project_id={pid}&limit=5"))
    cost("jobs next page", next_of("jobs page"))
    cost("jobs of a type", lambda: bob.get(f"jobs/?project_id={pid}&type=process_projectfile&limit=5"))
    cost("deltas page", lambda: bob.get(f"deltas/{pid}/?limit=5"))
    cost("deltas next page", next_of("deltas page"))
    cost("newest deltas page", lambda: bob.get(f"deltas/{pid}/?ordering=-created_at&limit=5"))
    cost("deltafile page", lambda: bob.get(f"deltas/{pid}/{deltafile}/?limit=5"))
    cost("deltafile next page", next_of("deltafile page"))
    cost("collaborators page", lambda: alice.get(f"collaborators/{pid}/?limit=5"))
    cost("upload a new file", lambda: upload(bob, pid, "new.csv", b"x"))
    cost("upload a new version", lambda: upload(bob, pid, "data/f000001.csv", b"y"))
    cost("delete a file", lambda: bob.delete(f"files/{pid}/data/f000002.csv/"))
    cost("download", lambda: bob.get(f"files/{pid}/data/f000003.csv/"))
    assert replies["files page"].headers["X-Total-Count"] == str(size)
    assert [f["name"] for f in replies["files page by offset (SDK, QField)"].json()][0] == "data/f000005.csv"
    return costs


def test_paged_requests_cost_the_same_from_10_to_10000_files_of_10_versions(users, aws):
    """A page of a list costs the same whatever the list's length: with a cursor, and with a bare
    offset right after the page before (the SDK and QField); only a cold bare offset counts its
    way (a COUNT Query per MB skipped), and a whole list reads a Query per MB."""
    small = _paged_costs(users, 10)
    for name, calls in small.items():
        assert "Scan" not in calls and sum(calls.values()) <= 12, (name, calls)
        if "page" in name:
            assert calls.get("Query") == (2 if name == "collaborators page" else 1), (name, calls)
    assert _paged_costs(users, 10_000) == small


def _project_world(users, size: int) -> dict:
    """alice owns `size` projects and the organization `acme` with `size` projects; carol
    administers `acme`; bob is in its team `crew`, which collaborates on every `acme` project, and
    collaborates himself on each of alice's; dave owns `size` public projects. Written straight
    into the tables, each project with a 1 KB description: at 2,400 projects an owner's are
    more than 2 MB and bob's collaborator rows far more than a BatchGetItem's 100 keys."""
    import uuid

    from chalicelib.http import pagination
    from chalicelib.models import Collaborator, Membership, Project, ProjectName, Team, User
    from chalicelib.models.collaborators import team_collaborator_key
    from chalicelib.models.projects import PUBLIC_PARTITION

    suffix = str(size)
    alice, bob, carol = users(f"alice{suffix}"), users(f"bob{suffix}"), users(f"carol{suffix}")
    dave = users(f"dave{suffix}")
    acme = f"acme{suffix}"
    assert alice.post("organizations/", json={"username": acme}).status == 201
    alice.post(f"members/{acme}/", json={"member": bob.username})
    alice.post(f"members/{acme}/", json={"member": carol.username, "role": "admin"})
    alice.post(f"organizations/{acme}/teams/", json={"team": "crew"})
    alice.post(f"organizations/{acme}/teams/crew/members/", json={"member": bob.username})
    team = team_collaborator_key(User.get(f"@{acme}/crew").team_id)
    assert Team.count(acme) == 1 and Membership.count(acme) == 3
    with Project.batch_write() as projects, ProjectName.batch_write() as names, \
            Collaborator.batch_write() as rows:
        for owner in (alice.username, acme, dave.username):
            for i in range(size):
                project = Project(str(uuid.uuid4()), name=f"p{i:05}", owner=owner, owner_key=owner,
                                  owner_is_organization=owner == acme, description="d" * 1024)
                if owner == dave.username:
                    project.is_public, project.public_partition = True, PUBLIC_PARTITION
                project.list_order = project.current_list_order()
                projects.save(project)
                names.save(ProjectName(ProjectName.key_for(owner, project.name), project_id=project.id))
                if owner != dave.username:
                    key = bob.username if owner == alice.username else team
                    rows.save(Collaborator(project.id, key, collaborator=key, role="editor",
                                           project_order=project.list_order))
    pagination._bookmarks.clear()
    return {"alice": alice, "bob": bob, "carol": carol}


PROJECT_PAGES = {
    "first page (SDK)": "projects/?include-public=0&limit=20",
    "next page by offset (SDK)": "projects/?include-public=0&limit=20&offset=20",
    "first page (QField)": "projects/?limit=250",
    "next page by offset (QField)": "projects/?limit=250&offset=250",
    "page with public ones (QField search)": "projects/?include_public=1&limit=250",
    "public projects page": "projects/public/?limit=20",
}


def _project_page_costs(users, size: int) -> dict[str, dict]:
    world = _project_world(users, size)
    costs: dict[str, dict] = {}
    for caller in ("alice", "carol", "bob"):
        for name, url in PROJECT_PAGES.items():
            with counted_calls() as calls:
                reply = world[caller].get(url)
            assert reply.status == 200, (caller, name, reply.content)
            assert "X-Next-Page" in reply.headers, (caller, name)
            costs[f"{name}, {caller}"] = dict(calls)
        with counted_calls() as calls:
            reply = world[caller].get(reply.headers["X-Next-Page"])
        costs[f"next page (cursor), {caller}"] = dict(calls)
    return costs


def test_project_pages_cost_the_same_from_600_to_2400_projects_a_source(users, aws):
    """Pages of `GET projects/` in the default order, as the SDK and QField ask for them, cost the
    same whatever the number of projects, collaborations and public projects behind them."""
    small = _project_page_costs(users, 600)
    for name, calls in small.items():
        assert "Scan" not in calls and sum(calls.values()) <= 14, (name, calls)
    assert _project_page_costs(users, 2400) == small
