"""AWS calls per API request, for worlds of growing size (moto in process).

    .venv/bin/python -m bench.request_costs 10 100 1000 10000

For a size N: alice owns N projects and the organization `acme`, which has N members, N teams and
N projects; N other organizations exist; bob collaborates on one of alice's projects, is a member
of `acme` and in one team, which collaborates on one `acme` project; carol administers `acme`.
One project holds min(N, 100) files. The bulk is written through the models (the requests
measured go through the API): what grows is everything but the measured callers' own ties,
except where a row says "of them all".

Calls are counted at botocore's one dispatch point (`BaseClient._make_api_call`, under PynamoDB
and boto3 alike) by service and operation. Prints the totals per request and size, whether each
stays flat, the calls by operation at the largest size, and one JSON line.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections import Counter
from typing import Any

os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                   "AWS_DEFAULT_REGION": "us-east-1", "QFC_PASSWORD_HASH_CHEAP": "1",
                   "POWERTOOLS_METRICS_DISABLED": "true"})
os.environ.pop("QFC_AWS_ENDPOINT_URL", None)

import botocore.client  # noqa: E402
from moto import mock_aws  # noqa: E402

from bench.common import json_line  # noqa: E402

PASSWORD = "bench password"
MAX_FILES = 100  # files are the scale issue's (bench there); each upload here is a moto transaction


def _counting(calls: Counter):
    original = botocore.client.BaseClient._make_api_call

    def count(client, operation, params):
        calls[f"{client.meta.service_model.service_name}.{operation}"] += 1
        return original(client, operation, params)

    return original, count


def _bulk(size: int) -> dict[str, str]:
    """The projects, members, teams and organizations, written in batches."""
    from chalicelib.models import Collaborator, Membership, Project, ProjectName, Team, User
    from chalicelib.models.collaborators import team_collaborator_key
    from chalicelib.models.users import ORGANIZATION, PERSON

    team_ids = [str(uuid.uuid4()) for _ in range(size)]
    with User.batch_write() as users, Membership.batch_write() as memberships, \
            Team.batch_write() as teams:
        for i in range(size):
            users.save(User(f"member{i}", username=f"member{i}", account_type=PERSON,
                            directory_partition="m"))
            users.save(User(f"other{i}", username=f"other{i}", account_type=ORGANIZATION,
                            organization_owner=f"member{i}", directory_partition="o"))
            memberships.save(Membership("acme", f"member{i}", organization="acme", member=f"member{i}"))
            memberships.save(Membership(f"other{i}", f"member{i}", organization=f"other{i}",
                                        member=f"member{i}", role="owner"))
            teams.save(Team("acme", team_ids[i], name=f"team{i}", members={f"member{i}"}))
            users.save(User(f"@acme/team{i}", username=f"@acme/team{i}", account_type=3,
                            organization_key="acme", team_id=team_ids[i]))
    ids: dict[str, list[str]] = {"alice": [], "acme": []}
    with Project.batch_write() as projects, ProjectName.batch_write() as names:
        for owner in ids:
            for i in range(size):
                pid = str(uuid.uuid4())
                ids[owner].append(pid)
                project = Project(pid, name=f"p{i}", owner=owner, owner_key=owner,
                                  owner_is_organization=owner == "acme")
                project.list_order = project.current_list_order()
                projects.save(project)
                names.save(ProjectName(ProjectName.key_for(owner, f"p{i}"), project_id=pid))
    Membership("acme", "bob", organization="acme", member="bob", team_ids={team_ids[0]}).save()
    Membership("acme", "carol", organization="acme", member="carol", role="admin").save()
    User("acme").update(actions=[User.members_count.set(size + 2)])  # as adding them counts them
    Team("acme", team_ids[0], name="team0", members={"member0", "bob"}).save()
    Collaborator(ids["acme"][0], team_collaborator_key(team_ids[0]), collaborator="@acme/team0",
                 role="editor", project_order=Project.get(ids["acme"][0]).list_order).save()
    return {"org_pid": ids["acme"][0]}


def measure(size: int) -> dict[str, Counter]:
    from app import app, handler
    from chalicelib.services import accounts, organizations
    from devstack.gateway import ApiGateway
    from devstack.resources import ensure_all
    from tests.client import ApiClient

    with mock_aws():
        ensure_all()
        people = {name: accounts.create_user(name, PASSWORD) for name in ("alice", "bob", "carol", "dave")}
        organizations.create_organization(people["alice"], "acme")
        api = ApiClient(ApiGateway(app, handler))
        alice, bob, carol = (api.login(name, PASSWORD) for name in ("alice", "bob", "carol"))
        pid = alice.create_project("files")["id"]
        # Before the bulk: moto copies every table on each transaction, which an upload is.
        for i in range(min(size, MAX_FILES)):
            alice.post(f"files/{pid}/data/f{i}.csv/", files={"file": b"a,b"})
        alice.post(f"collaborators/{pid}/", data={"collaborator": "bob", "role": "editor"})
        org_pid = _bulk(size)["org_pid"]
        requests = {
            "POST projects/": lambda: alice.post("projects/", json={"name": "created"}),
            "GET projects/<id>/ (collaborator)": lambda: bob.get(f"projects/{pid}/"),
            "GET projects/<id>/ (team member)": lambda: bob.get(f"projects/{org_pid}/"),
            "GET projects/<id>/ (organization admin)": lambda: carol.get(f"projects/{org_pid}/"),
            "GET projects/?limit=20 (collaborator, team member)": lambda: bob.get("projects/?limit=20"),
            "GET projects/?include_public=1&limit=250 (same)":
                lambda: bob.get("projects/?include_public=1&limit=250"),
            "GET projects/ whole list (collaborator, team member)": lambda: bob.get("projects/"),
            "GET members/acme/ (of them all)": lambda: bob.get("members/acme/"),
            "GET members/acme/?limit=20 (a page)": lambda: bob.get("members/acme/?limit=20"),
            "GET organizations/acme/teams/ (of them all)": lambda: bob.get("organizations/acme/teams/"),
            "GET users/bob/organizations/ (public members)": lambda: bob.get("users/bob/organizations/"),
            "GET users/?q=member1 (of them all)": lambda: bob.get("users/?q=member1"),
            "POST members/acme/": lambda: alice.post("members/acme/", json={"member": "dave"}),
            "DELETE members/acme/<member>/": lambda: alice.delete("members/acme/bob/"),
            "GET files/<id>/ (of them all)": lambda: bob.get(f"files/{pid}/"),
            "GET files/<id>/<name>/": lambda: bob.get(f"files/{pid}/data/f0.csv/"),
            "POST files/<id>/<name>/": lambda: bob.post(f"files/{pid}/new.csv/", files={"file": b"x"}),
            "DELETE files/<id>/<name>/": lambda: bob.delete(f"files/{pid}/data/f1.csv/"),
            "GET collaborators/<id>/": lambda: alice.get(f"collaborators/{pid}/"),
            "GET projects/?limit=20 (organization admin)": lambda: carol.get("projects/?limit=20"),
            "GET projects/?limit=250 (organization admin)": lambda: carol.get("projects/?limit=250"),
            "GET projects/?limit=20 (owner, SDK)": lambda: alice.get("projects/?include-public=0&limit=20"),
            "GET projects/?limit=20&offset=20 (owner, SDK)":
                lambda: alice.get("projects/?include-public=0&limit=20&offset=20"),
            "GET projects/?limit=250 (owner, QField)": lambda: alice.get("projects/?limit=250"),
            "GET projects/public/?limit=20": lambda: bob.get("projects/public/?limit=20"),
            "GET projects/ whole list (organization admin: of them all)": lambda: carol.get("projects/"),
            "GET projects/ whole list (owner: of them all)": lambda: alice.get("projects/"),
        }
        costs = {}
        for name, request in requests.items():
            calls: Counter = Counter()
            original, count = _counting(calls)
            botocore.client.BaseClient._make_api_call = count
            try:
                reply = request()
            finally:
                botocore.client.BaseClient._make_api_call = original
            assert reply.status < 400, (name, reply.status, reply.content[:200])
            assert not [call for call in calls if call.endswith(".Scan")], name
            costs[name] = calls
        return costs


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [10, 100, 1000]
    results = {}
    for size in sizes:
        results[size] = measure(size)
        print(f"measured {size}", file=sys.stderr, flush=True)
    names = list(next(iter(results.values())))
    totals = {name: {size: sum(results[size][name].values()) for size in sizes} for name in names}
    print(f"{'request':64}" + "".join(f"{size:>8}" for size in sizes) + "    flat")
    for name in names:
        flat = "yes" if len(set(totals[name].values())) == 1 else "grows"
        print(f"{name:64}" + "".join(f"{totals[name][size]:>8}" for size in sizes) + f"{flat:>8}")
    largest = sizes[-1]
    print(f"\ncalls by service and operation at {largest}:")
    for name in names:
        calls = sorted(results[largest][name].items())
        print(f"  {name}: " + ", ".join(f"{call} {count}" for call, count in calls))
    figures: dict[str, Any] = {
        "sizes": sizes, "total_calls": {name: {str(size): total for size, total in totals[name].items()}
                                        for name in names},
        "by_operation_at_largest": {name: dict(results[largest][name]) for name in names},
    }
    print(json_line("request_costs", **figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
