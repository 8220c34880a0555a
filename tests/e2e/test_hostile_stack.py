"""A QGIS project can touch nothing but its own project, on the real local stack: what needs the
AWS stand-in over HTTP, the worker as a process of its own, or a worker killed mid-job. Each
hostile project is uploaded over HTTP by an ordinary user; what came back is checked as that
user sees it (the job's page, the package's files), the worker from outside (its memory in
/proc, its folders on disk).

The stack runs without its own worker; the tests start theirs (and kill them). The operator
allows one private address, 127.0.0.2, to jobs: a silent server there keeps a job running for
as long as a test needs. Everything else on loopback (moto's server among it) stays refused.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import tempfile
import threading
import zipfile
from pathlib import Path
from urllib.parse import quote

import boto3
import pytest
import requests

from tests.e2e.stack import ADMIN_PASSWORD, LocalStack
from tests.hostile_projects import Layer, Listener, assert_refused, canary, gpkg, qgs
from tests.waiting import DEADLINE_SECONDS, wait_until

pytestmark = pytest.mark.e2e
ALLOWED_PRIVATE_HOST = "127.0.0.2"
FINAL = ("finished", "failed")


class Api:
    """A user of the API over HTTP, with a token."""

    def __init__(self, url: str, username: str, password: str):
        self.url = url
        credentials = {"username": username, "password": password}
        reply = requests.post(url + "auth/login/", json=credentials, timeout=30)
        assert reply.status_code == 200, reply.text
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {reply.json()['token']}"

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.url + path, timeout=60, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.session.post(self.url + path, timeout=60, **kwargs)

    def create_project(self, name: str) -> str:
        reply = self.post("projects/", json={"name": name})
        assert reply.status_code == 201, reply.text
        return reply.json()["id"]

    def upload(self, pid: str, name: str, content: bytes) -> None:
        reply = self.post(f"files/{pid}/{quote(name)}/", files={"file": (name, content)})
        assert reply.status_code == 201, reply.text

    def jobs(self, pid: str, job_type: str) -> list[dict]:
        listed = self.get(f"jobs/?project_id={pid}").json()
        return [self.get(f"jobs/{job['id']}/").json() for job in listed if job["type"] == job_type]

    def wait_for_job(self, pid: str, job_type: str) -> dict:
        """The project's one job of `job_type`, once it is finished or failed."""

        def done() -> dict | None:
            jobs = self.jobs(pid, job_type)
            return jobs[0] if len(jobs) == 1 and jobs[0]["status"] in FINAL else None

        return wait_until(done, f"the {job_type} job of {pid} did not end", interval=0.2)

    def fetch(self, path: str) -> bytes:
        reply = self.get(path, allow_redirects=False)
        assert reply.status_code == 302, reply.text
        return requests.get(reply.headers["Location"], timeout=60).content


def secret_gpkg(folder: Path, name: str, text: str) -> bytes:
    """A GeoPackage whose column name and value are `text`."""
    return gpkg(folder / name, "secret", {f"{text}_field": f"{text}_value"}).read_bytes()


@pytest.fixture(scope="module")
def job_tmp() -> Path:
    """The stack's temporary folder (TMPDIR): where its worker makes job folders. Every user may
    pass through it, as through /tmp: a worker running as root hands each job folder to the
    job's own user (pytest's own temporary folders are closed to other users)."""
    folder = Path(tempfile.mkdtemp(prefix="qfc-test-stack-tmp-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, job_tmp):
    local = LocalStack(tmp_path_factory.mktemp("hostile"), extra_env={
        "QFC_WORKER": "0", "QFC_JOB_LEASE_SECONDS": "2", "QFC_JOB_POLL_SECONDS": "1",
        "QFC_JOB_ALLOWED_PRIVATE_HOSTS": ALLOWED_PRIVATE_HOST, "TMPDIR": str(job_tmp)})
    local.start()
    for name in ("alice", "bob"):
        assert local.createuser(name, f"pw-{name}-secret", "--email", f"{name}@example.com").returncode == 0
    yield local
    assert local.stop() == 0, "".join(local.output)


@pytest.fixture(scope="module")
def alice(stack) -> Api:
    return Api(stack.url, "alice", "pw-alice-secret")


@pytest.fixture(scope="module")
def bob(stack) -> Api:
    return Api(stack.url, "bob", "pw-bob-secret")




# --- findings 1 and 3 on the stack: the AWS stand-in and the local data directory ----------------

FORGED_SIGNATURE = "AWSAccessKeyId=anyone&Signature=anything&Expires=9999999999"


@pytest.fixture(scope="module")
def stolen(stack, alice, bob, tmp_path_factory):
    """alice's project naming bob's GeoPackage in moto's S3 by URL (moto's server takes any
    presigned-looking query as a signature) and the admin's credentials file in the data
    directory, processed and packaged by a worker; the two jobs, the package's files, the
    secret, and the requests moto's server saw for bob's object with that forged query."""
    secret = canary()
    bobs = bob.create_project("private")
    bob.upload(bobs, "secret.gpkg", secret_gpkg(tmp_path_factory.mktemp("bob"), "secret.gpkg", secret))
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{stack.aws_port}", region_name="us-east-1",
                      aws_access_key_id="local", aws_secret_access_key="local")
    (bucket, key), = [(b["Name"], o["Key"]) for b in s3.list_buckets()["Buckets"]
                      for o in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", [])
                      if bobs in o["Key"] and o["Key"].endswith("secret.gpkg")]
    credentials = stack.data_dir / "admin-credentials"
    assert ADMIN_PASSWORD in credentials.read_text()  # what the attacker is after
    object_url = f"http://127.0.0.1:{stack.aws_port}/{bucket}/{key}?{FORGED_SIGNATURE}"
    layers = [
        Layer("bobs_object_vsicurl", f"/vsicurl/{object_url}|layername=secret", "ogr",
              cloud_action="offline"),
        Layer("bobs_object_via_localhost", f"/vsicurl/{object_url.replace('127.0.0.1', 'localhost')}"
              "|layername=secret", "ogr", cloud_action="offline"),
        Layer("admin_credentials", f"file://{credentials}?type=csv&delimiter=%20&useHeader=yes&geomType=none",
              "delimitedtext", cloud_action="offline"),
    ]
    pid = alice.create_project("thief")
    alice.upload(pid, "project.qgs", qgs(layers).encode())
    process = stack.start_worker()
    try:
        processed = alice.wait_for_job(pid, "process_projectfile")
        assert alice.post("jobs/", json={"project_id": pid, "type": "package"}).status_code == 201
        packaged = alice.wait_for_job(pid, "package")
    finally:
        stack.stop_worker(process)
    files = {}
    if packaged["status"] == "finished":
        files = {item["name"]: alice.fetch(f"packages/{pid}/latest/files/{item['name']}/")
                 for item in alice.get(f"packages/{pid}/latest/").json()["files"]}
    moto_log = (stack.data_dir / "moto.log").read_text(errors="replace").splitlines()
    fetched = [line for line in moto_log if key in line and FORGED_SIGNATURE.split("=")[0] in line]
    return {"processed": processed, "packaged": packaged, "files": files, "secret": secret,
            "fetched": fetched}


def processed_layers(job: dict) -> dict[str, dict]:
    return job["feedback"]["outputs"]["project_details"]["project_details"]["layers_by_id"]


def _leaks(stolen: dict, secret: str) -> list[str]:
    """Where `secret` shows: the jobs' pages, the package's files."""
    found = [name for name in ("processed", "packaged") if secret in json.dumps(stolen[name])]
    return found + [name for name, content in stolen["files"].items() if secret.encode() in content]


def test_a_layer_cannot_read_another_users_object_from_the_aws_stand_in(stolen):
    # The attack: a URL to moto's server on loopback read another user's GeoPackage; `offline`
    # copied its rows into the attacker's data.gpkg.
    assert _leaks(stolen, stolen["secret"]) == []
    assert stolen["fetched"] == [], "the worker asked moto's server for bob's object"
    assert stolen["processed"]["status"] == "finished", stolen["processed"]["output"]
    processed = processed_layers(stolen["processed"])
    packaged = stolen["packaged"]["feedback"]["outputs"]["qgis_layers_data"]["layers_by_id"]
    for layer_id in ("bobs_object_vsicurl", "bobs_object_via_localhost"):
        assert_refused(processed[layer_id])
        assert_refused(packaged[layer_id])


def test_a_layer_cannot_read_the_admin_password_from_the_data_directory(stolen):
    # The attack: a delimited text layer over the local stack's data directory, where the
    # admin's credentials are kept; its first line became the layer's field names.
    assert _leaks(stolen, ADMIN_PASSWORD) == []
    processed = processed_layers(stolen["processed"])
    assert_refused(processed["admin_credentials"])


# --- finding 5: a .qgz bomb unpacked in the worker's own process ---------------------------------

BOMB_MEMBER_MIB = 200
BOMB_MEMBERS = 3
WORKER_GROWTH_LIMIT_MB = 256


def qgz_bomb() -> bytes:
    """A small valid project first (what the upload checks), then .qgs members that inflate to
    BOMB_MEMBERS × BOMB_MEMBER_MIB MiB of blanks: about 0.6 MB on the wire."""
    buffer = io.BytesIO()
    blanks = b" " * 1024**2
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("p.qgs", qgs([]))
        for index in range(BOMB_MEMBERS):
            with archive.open(f"padding{index}.qgs", "w", force_zip64=True) as member:
                for _ in range(BOMB_MEMBER_MIB):
                    member.write(blanks)
    return buffer.getvalue()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def children(pid: int) -> list[str]:
    return [child for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


class PeakMemory:
    """Samples a process's resident memory in a thread until stopped; the highest seen."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.errors = pid, 0.0, []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        try:
            while not self._done.wait(0.01):
                self.peak = max(self.peak, rss_mb(self.pid))
        except Exception as error:  # noqa: BLE001 (the test fails on it)
            self.errors.append(error)

    def stop(self) -> float:
        self._done.set()
        self._thread.join(timeout=10)
        assert not self.errors, self.errors
        return self.peak


def test_a_qgz_bomb_does_not_inflate_the_worker(alice, worker):
    # The attack: 0.6 MB uploaded; the worker read every .qgs member of the archive in full, in
    # its own process, outside the job's memory limit (116 MB became 2.4 GB).
    bomb = qgz_bomb()
    assert len(bomb) < 2 * 1024**2
    process = worker()
    pid = alice.create_project("bomb")
    # A child waits for the next job: the worker is up.
    wait_until(lambda: process.poll() is not None or children(process.pid), "the worker did not start")
    assert process.poll() is None, "the worker died"
    baseline = rss_mb(process.pid)
    sampler = PeakMemory(process.pid)
    try:
        alice.upload(pid, "p.qgz", bomb)
        job = alice.wait_for_job(pid, "process_projectfile")
    finally:
        peak = sampler.stop()
    assert job["status"] == "failed"
    reason = (job["feedback"] or {}).get("error") or job["output"]
    assert "p.qgz" in reason, reason
    assert process.poll() is None, "the worker died"
    assert peak - baseline < WORKER_GROWTH_LIMIT_MB, f"the worker went from {baseline:.0f} to {peak:.0f} MB"


# --- finding 10: what a killed worker leaves behind -----------------------------------------------

def files_named(root: Path, name: str) -> list[Path]:
    return [Path(folder) / name for folder, _, names in os.walk(root) if name in names]


@pytest.fixture(scope="module")
def killed_mid_job(stack, alice, job_tmp, tmp_path_factory):
    """A worker killed while it runs alice's process_projectfile (its QGIS child is waiting on a
    silent server), then a new worker started; what was on disk between the two, and after."""
    listener = Listener(answer=False, host=ALLOWED_PRIVATE_HOST)
    tenant_file = f"tenant-{canary()}.gpkg"
    layers = [Layer("tenant_data_layer", f"./{tenant_file}|layername=secret", "ogr"),
              Layer("silent_server_layer", f"/vsicurl/http://{ALLOWED_PRIVATE_HOST}:{listener.port}/a.tif",
                    "gdal", kind="raster")]
    pid = alice.create_project("tenant")
    alice.upload(pid, tenant_file, secret_gpkg(tmp_path_factory.mktemp("tenant"), tenant_file, canary()))
    first = stack.start_worker()
    try:
        alice.upload(pid, "project.qgs", qgs(layers).encode())
        assert listener.connected.wait(DEADLINE_SECONDS), "the job never reached the silent server"
        left_behind = files_named(job_tmp, tenant_file)
        first.send_signal(signal.SIGKILL)
        first.wait()
        still_there = [path for path in left_behind if path.exists()]
        second = stack.start_worker()
        try:
            job = alice.wait_for_job(pid, "process_projectfile")
            # The new worker removes them as it starts, before it takes a job; or never.
            after_restart = files_named(job_tmp, tenant_file)
            return {"left_behind": left_behind, "still_there": still_there, "job": job,
                    "after_restart": after_restart, "project": alice.get(f"projects/{pid}/").json()}
        finally:
            stack.stop_worker(second)
    finally:
        if first.poll() is None:  # the test failed before it killed the worker: no orphan left
            first.kill()
            first.wait()
        listener.close()


def test_job_folders_of_a_killed_worker_are_removed_when_a_worker_starts(killed_mid_job):
    # The finding: the folder of a killed worker's job stayed on disk with the tenant's data.
    assert killed_mid_job["left_behind"], "the job's folder was not found while it ran"
    assert killed_mid_job["still_there"]  # a SIGKILL leaves it: the next worker's business
    assert killed_mid_job["after_restart"] == []


def test_a_project_whose_processing_was_abandoned_is_failed(killed_mid_job):
    # The finding: a process_projectfile job failed by the sweeper (its worker died) left the
    # project's status `ok`.
    assert killed_mid_job["job"]["status"] == "failed"
    assert killed_mid_job["project"]["status"] == "failed"
