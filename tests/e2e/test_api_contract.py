"""The API against its own OpenAPI document, over HTTP on the real local stack: schemathesis
sends generated requests to every operation (authenticated, a bounded number of examples) and
finds no 5xx and no response the document does not describe; headless Chromium opens Swagger UI
and ReDoc and sees the operations listed."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.stack import ADMIN_PASSWORD, LocalStack

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Bounded: each operation gets at most this many generated cases per phase (about 40 s in all).
MAX_EXAMPLES = 10
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance")
ORGANIZATION, TEAM, FILENAME, MATE = "fuzzorg", "field", "data/a.csv", "mate"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A local stack of its own, without the job worker: the jobs fuzzing starts just wait. Sign-up
    and password reset by e-mail are on, so that fuzzing reaches them beyond their 403."""
    settings = {"QFC_WORKER": "0", "QFC_SIGNUP": "1", "QFC_MAIL_SENDER": "cloud@example.com"}
    local = LocalStack(tmp_path_factory.mktemp("contract"), extra_env=settings)
    local.start()
    yield local
    assert local.stop() == 0, "".join(local.output)


@pytest.fixture(scope="module")
def server(stack) -> str:
    return stack.url.removesuffix("/api/v1/")


class Admin:
    def __init__(self, api: str, username: str = "admin", password: str = ADMIN_PASSWORD):
        self.api = api
        credentials = {"username": username, "password": password}
        reply = requests.post(api + "auth/login/", json=credentials, timeout=30)
        reply.raise_for_status()
        self.token = reply.json()["token"]

    def post(self, path: str, **kwargs):
        reply = requests.post(self.api + path, headers={"Authorization": f"Token {self.token}"}, timeout=30,
                              **kwargs)
        assert reply.status_code < 300, (path, reply.status_code, reply.text)
        return reply.json()


@pytest.fixture(scope="module")
def world(stack) -> dict[str, str]:
    """What the generated requests act on: a project with a file, a collaborator and an upload
    under way, a project they may delete, an organization with a team, a person who is a member
    of both, and two other persons whose tokens the logout and the token revocation may revoke
    (the fuzzing learns token ids from `GET auth/tokens/` and revokes the caller's own)."""
    admin = Admin(stack.url)
    for name in (MATE, "leaver", "revoker"):
        admin.post("users/", json={"username": name, "password": "a long password", "email": f"{name}@x.org"})
    project = admin.post("projects/", json={"name": "fuzzed"})["id"]
    admin.post(f"files/{project}/{FILENAME}/", files={"file": ("a.csv", b"a,b\n1,2\n")})
    admin.post(f"collaborators/{project}/", json={"collaborator": MATE, "role": "editor"})
    upload = admin.post(f"uploads/{project}/", json={"name": "big.bin", "size": 10})["upload_id"]
    victim = admin.post("projects/", json={"name": "deleted-by-fuzzing"})["id"]
    admin.post("organizations/", json={"username": ORGANIZATION})
    admin.post(f"organizations/{ORGANIZATION}/teams/", json={"team": TEAM})
    admin.post(f"members/{ORGANIZATION}/", json={"member": MATE})
    admin.post(f"organizations/{ORGANIZATION}/teams/{TEAM}/members/", json={"member": MATE})
    leaver = Admin(stack.url, "leaver", "a long password")
    revoker = Admin(stack.url, "revoker", "a long password")
    return {"token": admin.token, "project": project, "upload": upload, "victim": victim,
            "leaver_token": leaver.token, "revoker_token": revoker.token}


def _config(world: dict[str, str]) -> str:
    """Known values for path parameters, so that the requests reach the code behind the lookups;
    DELETE projects/ gets a project of its own, the logout and the tokens other users' tokens."""
    return f"""
workers = 1
max-redirects = 0
request-timeout = 60

[generation]
max-examples = {MAX_EXAMPLES}
database = "none"

[parameters]
project_id = "{world['project']}"
upload_id = "{world['upload']}"
username = "{MATE}"
member = "{MATE}"
organization = "{ORGANIZATION}"
team = "{TEAM}"
filename = "{FILENAME}"

[[operations]]
include-operation-id = "delete_projects_project_id"
parameters = {{ project_id = "{world['victim']}" }}

[[operations]]
include-path-regex = "^/auth/logout/"
headers = {{ Authorization = "Token {world['leaver_token']}" }}

[[operations]]
include-path-regex = "^/auth/tokens/"
headers = {{ Authorization = "Token {world['revoker_token']}" }}
"""


def test_generated_requests_find_no_server_error_and_no_response_off_the_document(
        stack, server, world, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(world))
    run = subprocess.run(
        [str(BIN / "st"), "--config-file", str(config), "--no-color", "run", f"{server}/swagger.json",
         "--url", stack.url.rstrip("/"), "--header", f"Authorization: Token {world['token']}",
         "--checks", ",".join(CHECKS), "--phases", "examples,coverage,fuzzing", "--seed", "20261125",
         "--report", "junit", "--report-dir", str(tmp_path / "report")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert re.search(r"Tested: (\d+)", run.stdout) and "Tested: 0" not in run.stdout, run.stdout[-3000:]
    print(run.stdout[run.stdout.find("SUMMARY"):])  # shown with `pytest -rP`


def _rendered(url: str, tmp_path: Path) -> str:
    """The page's DOM once its scripts have run, from Debian's headless Chromium."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (scripts/dev-apt-packages.txt)"
    profile = tmp_path / f"chromium-{abs(hash(url))}"
    run = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=30000",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def test_swagger_ui_lists_every_operation_in_headless_chromium(server, tmp_path):
    document = requests.get(f"{server}/swagger.json", timeout=30).json()
    wanted = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    dom = _rendered(f"{server}/swagger/", tmp_path)
    shown = set(re.findall(
        r'opblock-summary-method">(\w+)</span>.*?data-path="([^"]+)"', dom, flags=re.DOTALL))
    shown = {(method, html.unescape(path).replace("\u200b", "")) for method, path in shown}
    assert shown == wanted, (sorted(wanted - shown)[:10], dom[:2000])
    assert document["info"]["title"] in dom


def test_redoc_lists_the_operations_in_headless_chromium(server, tmp_path):
    dom = _rendered(f"{server}/docs/", tmp_path)
    assert "Create a project" in dom and "Upload a file (a new version of it if it exists)" in dom, dom[:2000]
