"""Load with an audit, on the real local stack (waitress, moto's server), loopback only: a fixed
amount of work, however long the machine takes for it. Concurrent clients log in, list
projects, upload new versions of the same files, download and check them, delete versions and
whole projects. Then an audit reads the AWS stand-in directly: every acknowledged upload is
there with its checksum, every refused one left nothing, the storage counters equal what is
stored and never passed the quota, and no request got a 5xx.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import boto3
import pytest
import requests
from boto3.dynamodb.types import TypeDeserializer

from tests.e2e.stack import LocalStack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

CLIENTS = int(os.environ.get("QFC_LOAD_CLIENTS", "8"))
# The run's length in requests, not in seconds, so that it exercises as much on a busy machine
# as on an idle one (where 600 take about 20 s on 2 cores).
REQUESTS = int(os.environ.get("QFC_LOAD_REQUESTS", "600"))
QUOTA = 2_000_000
GRACE_PERCENT = 10
NAMES = ["shared/a.gpkg", "shared/b.csv", "DCIM/c.jpg"]
QFIELD_AGENT = "qfield|3.4.0|3.4.0|load|"


@dataclass
class Ledger:
    """What the clients were told, and everything they saw."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    acknowledged: dict[str, dict] = field(default_factory=dict)  # version id -> what the 201 said
    refused_sha256: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)  # version ids whose deletion got 204
    deleted_projects: set[str] = field(default_factory=set)
    samples: list[tuple[str, int]] = field(default_factory=list)  # (owner, storage_used_bytes)

    def saw(self, operation: str, reply: requests.Response) -> None:
        with self.lock:
            self.statuses[(operation, reply.status_code)] += 1
            if reply.status_code >= 500:
                self.failures.append(f"{operation}: {reply.status_code} {reply.text[:200]}")

    def failed(self, failure: str) -> None:
        """What a client found wrong: the clients run in threads, where an assertion would only end
        the thread; the test asserts that there is none."""
        with self.lock:
            self.failures.append(failure)


class Client:
    def __init__(self, stack: LocalStack, ledger: Ledger, username: str, password: str,
                 project_id: str, user_agent: str, seed: int):
        self.api = stack.url
        self.ledger = ledger
        self.username, self.password = username, password
        self.project_id = project_id
        self.random = random.Random(seed)
        self.http = requests.Session()
        self.http.headers["User-Agent"] = user_agent
        self.mine: list[str] = []  # version ids this client uploaded
        self.login()

    def call(self, operation: str, method: str, path: str, **kwargs) -> requests.Response:
        reply = self.http.request(method, self.api + path, timeout=60, **kwargs)
        self.ledger.saw(operation, reply)
        return reply

    def login(self) -> None:
        reply = self.call("login", "POST", "auth/login/",
                          data={"username": self.username, "password": self.password})
        if reply.status_code != 200:
            self.ledger.failed(f"login of {self.username}: {reply.status_code} {reply.text[:200]}")
            return
        self.http.headers["Authorization"] = f"Token {reply.json()['token']}"

    def list_projects(self) -> None:
        self.call("list projects", "GET", "projects/?limit=5")

    def upload(self) -> None:
        name = self.random.choice(NAMES)
        content = self.random.randbytes(self.random.randint(10_000, 80_000))
        reply = self.call("upload", "POST", f"files/{self.project_id}/{name}/",
                          files={"file": ("f", content)})
        sha256 = hashlib.sha256(content).hexdigest()
        if reply.status_code == 201:
            body = reply.json()
            if (body["sha256"], body["size"]) != (sha256, len(content)):
                self.ledger.failed(f"upload of {name}: acknowledged as {body['sha256']}, {body['size']}"
                                   f" bytes; sent {sha256}, {len(content)} bytes")
            with self.ledger.lock:
                self.ledger.acknowledged[body["version_id"]] = {
                    "project": self.project_id, "name": name, "sha256": sha256,
                    "md5sum": hashlib.md5(content).hexdigest(), "size": len(content)}
            self.mine.append(body["version_id"])
        else:
            with self.ledger.lock:
                self.ledger.refused_sha256.add(sha256)

    def download(self) -> None:
        with self.ledger.lock:
            candidates = [(v, a) for v, a in self.ledger.acknowledged.items()
                          if a["project"] == self.project_id and v not in self.ledger.deleted]
        if not candidates:
            return
        version, ack = self.random.choice(candidates)
        path = f"files/{self.project_id}/{ack['name']}/?version={version}"
        reply = self.call("download", "GET", path, allow_redirects=False)
        if reply.status_code == 302:
            fetched = requests.get(reply.headers["Location"], timeout=60)
            if fetched.status_code == 404 and self.call(
                    "download", "GET", path, allow_redirects=False).status_code == 404:
                return  # another client deleted the version between the 302 and the fetch
            if fetched.status_code != 200 or hashlib.sha256(fetched.content).hexdigest() != ack["sha256"]:
                self.ledger.failed(f"download of {version}: {fetched.status_code}, not the bytes uploaded")

    def delete_version(self) -> None:
        if not self.mine:
            return
        version = self.mine.pop(self.random.randrange(len(self.mine)))
        name = self.ledger.acknowledged[version]["name"]
        reply = self.call("delete", "DELETE", f"files/{self.project_id}/{name}/?version={version}")
        if reply.status_code == 204:
            with self.ledger.lock:
                self.ledger.deleted.add(version)
        elif reply.status_code == 400:  # the last version of its file: kept
            self.mine.append(version)

    def create_and_delete_project(self) -> None:
        reply = self.call("create project", "POST", "projects/",
                          json={"name": f"scratch_{self.random.randrange(10**9)}"})
        if reply.status_code != 201:
            return
        pid = reply.json()["id"]
        self.call("upload", "POST", f"files/{pid}/notes.txt/", files={"file": ("f", b"scratch")})
        if self.call("delete project", "DELETE", f"projects/{pid}/").status_code == 204:
            with self.ledger.lock:
                self.ledger.deleted_projects.add(pid)

    def sample_quota(self) -> None:
        reply = self.call("subscription", "GET", f"subscriptions/{self.username}/current/")
        if reply.status_code == 200:
            with self.ledger.lock:
                self.ledger.samples.append((self.username, reply.json()["storage_used_bytes"]))

    def run(self, stop: threading.Event) -> None:
        operations = [(self.upload, 6), (self.download, 4), (self.delete_version, 3),
                      (self.list_projects, 2), (self.login, 1), (self.create_and_delete_project, 1),
                      (self.sample_quota, 1)]
        if "qfield" in self.http.headers["User-Agent"]:  # one QField token per user: no re-login
            operations = [(op, weight) for op, weight in operations if op != self.login]
        functions, weights = zip(*operations, strict=True)
        while not stop.is_set():
            try:
                self.random.choices(functions, weights)[0]()
            except requests.RequestException as error:  # a reset or a timeout is a failure too
                self.ledger.failed(f"connection: {error!r}")
            except Exception as error:  # noqa: BLE001 (an unexpected answer: recorded, the client goes on)
                self.ledger.failed(f"{self.username}: {type(error).__name__}: {error}")


def _exercised(ledger: Ledger) -> bool:
    """The run did what it audits: its requests, among them uploads that landed and uploads
    refused over quota, versions and projects deleted."""
    with ledger.lock:
        return (sum(ledger.statuses.values()) >= REQUESTS
                and ledger.statuses[("upload", 201)] > 20 and ledger.statuses[("upload", 402)] > 0
                and bool(ledger.deleted) and bool(ledger.deleted_projects))


def _scan(dynamodb, table: str) -> list[dict]:
    deserialize = TypeDeserializer().deserialize
    items, start = [], {}
    while True:
        page = dynamodb.scan(TableName=table, ConsistentRead=True, **start)
        items += [{k: deserialize(v) for k, v in item.items()} for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def _versions_of(item: dict) -> list[dict]:
    """A file item's versions as stored (docs/data-model.md): three JSON lines, the second the
    versions as listed, newest first, the third each one's `[s3_version_id, uploader]`."""
    _, listed, sources = (json.loads(line) for line in item["versions"].split("\n"))
    return [{**shown, "s3_version_id": s3_version_id}
            for shown, (s3_version_id, _) in zip(listed["versions"], sources, strict=True)]


def _audit(stack: LocalStack, ledger: Ledger, owners: dict[str, int]) -> dict:
    """Read what the stack stored, straight from the AWS stand-in, and compare."""
    endpoint = f"http://127.0.0.1:{stack.aws_port}"
    session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local",
                            region_name="us-east-1")
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    s3 = session.client("s3", endpoint_url=endpoint)
    wait_until(lambda: not ledger.deleted_projects & {p["id"] for p in _scan(dynamodb, "qfc-projects")},
               "the purges of the deleted projects did not end", interval=0.5)  # they run in the background
    projects = {p["id"]: p for p in _scan(dynamodb, "qfc-projects")}
    files = [{**item, "versions": _versions_of(item)} for item in _scan(dynamodb, "qfc-files")]
    users = {u["username_key"]: u for u in _scan(dynamodb, "qfc-users")}
    stored = {v["version_id"]: (f, v) for f in files for v in f["versions"]}
    s3_versions = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket="qfc-files", Prefix="projects/"):
        s3_versions += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
        assert not page.get("DeleteMarkers"), page.get("DeleteMarkers")

    problems = []
    for version, ack in ledger.acknowledged.items():
        if version in ledger.deleted or ack["project"] in ledger.deleted_projects:
            if version in stored:
                problems.append(f"{version}: deleted (204) but still listed")
            continue
        if version not in stored:
            problems.append(f"{version}: acknowledged (201) but lost")
            continue
        item, kept = stored[version]
        if (kept["sha256"], kept["md5sum"], int(kept["size"])) != (ack["sha256"], ack["md5sum"], ack["size"]):
            problems.append(f"{version}: checksum or size differs from the acknowledgement")
        key = f"projects/{item['project_id']}/files/{item['name']}"
        body = s3.get_object(Bucket="qfc-files", Key=key, VersionId=kept["s3_version_id"])["Body"].read()
        if hashlib.sha256(body).hexdigest() != ack["sha256"]:
            problems.append(f"{version}: the stored bytes differ")
    known = {(f"projects/{f['project_id']}/files/{f['name']}", v["s3_version_id"])
             for f in files for v in f["versions"]}
    orphans = [entry for entry in s3_versions if "/files/" in entry[0] and entry not in known]
    problems += [f"S3 version left behind (a refused or deleted upload): {entry}" for entry in orphans]
    unacknowledged = [v for v in stored if v not in ledger.acknowledged
                      and stored[v][0]["project_id"] not in ledger.deleted_projects]
    problems += [f"{v}: stored but never acknowledged" for v in unacknowledged
                 if stored[v][0]["project_id"] in {a["project"] for a in ledger.acknowledged.values()}]
    for pid in ledger.deleted_projects:
        if pid in projects or any(f["project_id"] == pid for f in files):
            problems.append(f"deleted project {pid} left items")
        if any(key.startswith(f"projects/{pid}/") for key, _ in s3_versions):
            problems.append(f"deleted project {pid} left S3 objects")
    for pid, project in projects.items():
        held = sum(int(v["size"]) for f in files if f["project_id"] == pid for v in f["versions"])
        if int(project["file_storage_bytes"]) != held:
            problems.append(f"project {pid}: counter {project['file_storage_bytes']} != {held} stored")
    for owner, limit in owners.items():
        held = sum(int(v["size"]) for f in files
                   if projects.get(f["project_id"], {}).get("owner_key") == owner for v in f["versions"])
        used = int(users[owner]["storage_used_bytes"])
        if used != held:
            problems.append(f"{owner}: counter {used} != {held} stored")
        over = [used for who, used in ledger.samples if who == owner and used > limit] + (
            [used] if used > limit else [])
        if over:
            problems.append(f"{owner}: storage {max(over)} above its limit {limit}")
    uploads = _scan(dynamodb, "qfc-upload-sessions")
    return {"problems": problems, "versions_kept": len(stored), "s3_versions": len(s3_versions),
            "pending_sessions": len(uploads)}


def test_concurrent_clients_for_a_fixed_amount_of_work_then_an_audit(tmp_path):
    stack = LocalStack(tmp_path / "data", extra_env={
        "QFC_DEFAULT_STORAGE_QUOTA_BYTES": str(QUOTA), "QFC_QUOTA_GRACE_PERCENT": str(GRACE_PERCENT),
        "QFC_KEEP_VERSIONS": "1000"})
    stack.start()
    try:
        for name in ("alice", "carol", "dave"):
            assert stack.createuser(name, f"pw-{name}-secret").returncode == 0
        setup = requests.Session()
        token = requests.post(f"{stack.url}auth/login/", timeout=30,
                              data={"username": "alice", "password": "pw-alice-secret"}).json()["token"]
        setup.headers["Authorization"] = f"Token {token}"
        office = setup.post(f"{stack.url}projects/", json={"name": "office"}, timeout=30).json()["id"]
        carol_token = requests.post(f"{stack.url}auth/login/", timeout=30,
                                    data={"username": "carol", "password": "pw-carol-secret"}).json()["token"]
        field_project = requests.post(f"{stack.url}projects/", json={"name": "field"}, timeout=30,
                                      headers={"Authorization": f"Token {carol_token}"}).json()["id"]
        requests.post(f"{stack.url}collaborators/{field_project}/", timeout=30,
                      json={"collaborator": "dave", "role": "editor"},
                      headers={"Authorization": f"Token {carol_token}"}).raise_for_status()

        ledger = Ledger()
        clients = []
        for n in range(CLIENTS):
            if n % 4 == 3:  # QField surveyors on carol's project, one user per token
                username, pid, agent = ("carol", "dave")[n // 4 % 2], field_project, QFIELD_AGENT
            else:
                username, pid, agent = "alice", office, "sdk|py|load"
            clients.append(Client(stack, ledger, username, f"pw-{username}-secret", pid, agent, n))
        stop = threading.Event()
        threads = [threading.Thread(target=client.run, args=(stop,)) for client in clients]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: _exercised(ledger), "the clients did not do their work", seconds=420,
                       interval=0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        elapsed = time.monotonic() - started
        audit = _audit(stack, ledger, {"alice": QUOTA, "carol": QUOTA + QUOTA * GRACE_PERCENT // 100})
    finally:
        assert stack.stop() == 0, "".join(stack.output[-50:])

    requests_made = sum(ledger.statuses.values())
    server_errors = sum(count for (_, status), count in ledger.statuses.items() if status >= 500)
    summary = (f"{CLIENTS} clients, {elapsed:.1f} s: {requests_made} requests, {server_errors} 5xx, "
               f"{len(ledger.acknowledged)} uploads acknowledged, {len(ledger.refused_sha256)} refused, "
               f"{len(ledger.deleted)} versions and {len(ledger.deleted_projects)} projects deleted, "
               f"{audit['versions_kept']} versions kept; audit problems: {len(audit['problems'])}")
    print(summary)
    print(sorted(ledger.statuses.items()))
    assert ledger.failures == [], ledger.failures[:10]
    assert server_errors == 0
    assert audit["problems"] == [], audit["problems"][:20]
    assert audit["pending_sessions"] == 0
