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
    """alice with `size` projects and `size` files in one, bob collaborating on one project."""
    alice, bob = users("alice"), users("bob")
    ids = [alice.create_project(f"p{i}")["id"] for i in range(size)]
    for i in range(size):
        upload(alice, ids[0], f"data/file{i}.csv", b"a,b")
    alice.post(f"collaborators/{ids[0]}/", data={"collaborator": "bob", "role": "editor"})
    return alice, bob, ids[0]


REQUESTS = {
    "get project (owner)": lambda a, b, pid: a.get(f"projects/{pid}/"),
    "get project (collaborator)": lambda a, b, pid: b.get(f"projects/{pid}/"),
    "list files": lambda a, b, pid: a.get(f"files/{pid}/"),
    "download": lambda a, b, pid: a.get(f"files/{pid}/data/file0.csv/"),
    "metadata": lambda a, b, pid: a.get(f"files/metadata/{pid}/data/file0.csv/"),
    "upload": lambda a, b, pid: upload(b, pid, "data/new.csv", b"x"),
    "delete file": lambda a, b, pid: a.delete(f"files/{pid}/data/file1.csv/"),
    "list collaborators": lambda a, b, pid: a.get(f"collaborators/{pid}/"),
    "list projects (collaborator)": lambda a, b, pid: b.get("projects/"),
    "patch project": lambda a, b, pid: a.patch(f"projects/{pid}/", data={"description": "d"}),
}


def _costs(users, size: int) -> dict[str, Counter]:
    alice, bob, pid = _world(users, size)
    costs = {}
    for name, request in REQUESTS.items():
        with counted_calls() as calls:
            reply = request(alice, bob, pid)
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
    from chalicelib import pagination
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
