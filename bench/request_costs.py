"""AWS calls per API request, for accounts of growing size (moto in process).

    .venv/bin/python -m bench.request_costs 10 100 1000
"""

from __future__ import annotations

import os
import sys
from collections import Counter

os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                   "AWS_DEFAULT_REGION": "us-east-1", "QFC_PASSWORD_HASH_CHEAP": "1"})
os.environ.pop("QFC_AWS_ENDPOINT_URL", None)

import botocore.client  # noqa: E402
from moto import mock_aws  # noqa: E402

PASSWORD = "bench password"


def _counting(calls: Counter):
    original = botocore.client.BaseClient._make_api_call

    def count(client, operation, params):
        calls[operation] += 1
        return original(client, operation, params)

    return original, count


def measure(size: int) -> dict[str, int]:
    from app import app, handler
    from chalicelib import accounts
    from devstack.gateway import ApiGateway
    from devstack.resources import ensure_all
    from tests.client import ApiClient

    with mock_aws():
        ensure_all()
        for name in ("alice", "bob"):
            accounts.create_user(name, PASSWORD)
        api = ApiClient(ApiGateway(app, handler))
        alice, bob = api.login("alice", PASSWORD), api.login("bob", PASSWORD)
        ids = [alice.create_project(f"p{i}")["id"] for i in range(size)]
        pid = ids[0]
        for i in range(size):
            alice.post(f"files/{pid}/data/f{i}.csv/", files={"file": b"a,b"})
        alice.post(f"collaborators/{pid}/", data={"collaborator": "bob", "role": "editor"})
        requests = {
            "GET projects/<id>/": lambda: bob.get(f"projects/{pid}/"),
            "GET files/<id>/": lambda: bob.get(f"files/{pid}/"),
            "GET files/<id>/<name>/": lambda: bob.get(f"files/{pid}/data/f0.csv/"),
            "POST files/<id>/<name>/": lambda: bob.post(f"files/{pid}/new.csv/", files={"file": b"x"}),
            "DELETE files/<id>/<name>/": lambda: bob.delete(f"files/{pid}/data/f1.csv/"),
            "GET collaborators/<id>/": lambda: alice.get(f"collaborators/{pid}/"),
            "GET projects/ (owner of them all)": lambda: alice.get("projects/"),
        }
        costs = {}
        for name, request in requests.items():
            calls: Counter = Counter()
            original, count = _counting(calls)
            botocore.client.BaseClient._make_api_call = count
            try:
                request()
            finally:
                botocore.client.BaseClient._make_api_call = original
            costs[name] = sum(calls.values())
        return costs


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [10, 100, 1000]
    results = {size: measure(size) for size in sizes}
    names = list(next(iter(results.values())))
    print(f"{'request':40}" + "".join(f"{size:>8}" for size in sizes))
    for name in names:
        label = name.split(" (")[0]
        print(f"{label:40}" + "".join(f"{results[size][name]:>8}" for size in sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
