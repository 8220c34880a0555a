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
