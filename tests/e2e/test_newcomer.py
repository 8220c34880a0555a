"""The local stack as a newcomer meets it, following the README: one stack per data folder,
`./dev createuser` beside a stack on other ports, the banner, the console and a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from devstack import data_folder
from tests.e2e.stack import ADMIN_PASSWORD, ROOT, LocalStack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def wait_until_released(data_dir: Path) -> None:
    wait_until(lambda: data_folder.running_stack(data_dir) is None, "the data folder stayed locked",
               interval=0.2)


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_second_stack_on_a_data_folder_is_refused_and_loses_nothing(tmp_path):
    data_dir = tmp_path / "data"
    first = LocalStack(data_dir)
    first.start()
    try:
        token = first.login("admin", ADMIN_PASSWORD)
        before = first.cli("--json", "create-project", "before", token=token).json()["id"]
        second = LocalStack(data_dir)  # other ports, the same folder
        refused = subprocess.run([sys.executable, "-m", "devstack", "run"], cwd=ROOT, env=second.env,
                                 capture_output=True, text=True, timeout=60, check=False,
                                 stdin=subprocess.DEVNULL)
        assert refused.returncode == 1
        assert f"The data folder {data_dir} is in use by the local stack of process {first.process.pid}" \
            in refused.stderr
        assert f"API on {first.url}" in refused.stderr
        assert f"AWS stand-in on port {first.aws_port}" in refused.stderr
        # What the first stack stores afterwards survives its restart (it was lost when the second
        # compacted the journal under it).
        after = first.cli("--json", "create-project", "after", token=token).json()["id"]
    finally:
        assert first.stop() == 0
    first.start()
    try:
        token = first.login("admin", ADMIN_PASSWORD)
        listed = {project["id"] for project in first.cli("--json", "list-projects", token=token).json()}
        assert {before, after} <= listed
        # However the stack dies, the kernel releases the folder: with a `kill -9` of the stack's
        # process, its AWS stand-in, job worker and large-request service end too, and a new
        # stack starts on the folder.
        worker = int((data_dir / "worker.pid").read_text())
        large_requests = int((data_dir / "large-requests.pid").read_text())
        first.process.kill()
        first.process.wait()
        wait_until_released(data_dir)
        wait_until(lambda: not running(worker), "the job worker outlived its stack", interval=0.2)
        wait_until(lambda: not running(large_requests), "the large-request service outlived its stack",
                   interval=0.2)
        second.start()
        token = second.login("admin", ADMIN_PASSWORD)
        listed = {project["id"] for project in second.cli("--json", "list-projects", token=token).json()}
        assert {before, after} <= listed
    finally:
        first.stop()
        assert second.stop() == 0


def dev(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "dev"), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False, stdin=subprocess.DEVNULL)


def test_createuser_and_createorg_find_the_stack_of_their_data_folder(stack):
    # A newcomer's shell beside a stack on other ports: only the data folder is set.
    env = {key: value for key, value in os.environ.items() if not key.startswith("QFC_")}
    env["QFC_DATA_DIR"] = str(stack.data_dir)
    created = dev("createuser", "carol", "pw-carol-secret", "carol@example.org", env=env)
    assert created.returncode == 0, created.stderr
    assert created.stdout == "Created user 'carol'.\n" and created.stderr == ""  # no warning
    token = stack.login("carol", "pw-carol-secret")
    me = requests.get(f"{stack.url}auth/user/", headers={"Authorization": f"Token {token}"}, timeout=30)
    assert me.json()["email"] == "carol@example.org"
    organization = dev("createorg", "carols-club", "--owner", "carol", env=env)
    assert organization.returncode == 0, organization.stderr
    assert organization.stderr == ""
    club = requests.get(f"{stack.url}users/carols-club/", headers={"Authorization": f"Token {token}"},
                        timeout=30).json()
    assert club["organization_owner"] == "carol"
    elsewhere = dev("createuser", "dave", "pw-dave-secret",
                    env={**env, "QFC_DATA_DIR": str(stack.data_dir.parent)})
    assert elsewhere.returncode == 1
    assert f"No local stack is running on the data folder {stack.data_dir.parent}." in elsewhere.stderr


def test_the_console_the_banner_and_a_clean_stop(tmp_path):
    """`./dev run` as a terminal runs it, stopped with Ctrl-C (SIGINT to its whole process group)."""
    stack = LocalStack(tmp_path / "data")
    env = {key: value for key, value in stack.env.items() if key != "QFC_QUIET"}
    process = subprocess.Popen([str(ROOT / "dev"), "run"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        banner = "".join(lines)
        root = f"http://127.0.0.1:{stack.port}"
        assert f"In a browser:     {root}/ (the web console)" in banner and f"{root}/swagger/" in banner
        assert "text/html" in requests.get(f"{root}/swagger/", timeout=30).headers["Content-Type"]
        cli = next(word for word in banner.split() if word.endswith("/qfieldcloud-cli"))
        assert os.access(cli, os.X_OK) and Path(cli).is_absolute()
        assert requests.get(f"{stack.url}projects/", timeout=30).status_code == 401
        # Stopped while the worker serves: the case where it met two signals.
        worker_log = tmp_path / "data" / "worker.log"

        def worker_started() -> bool:
            assert process.poll() is None, "the stack stopped"
            return worker_log.exists() and "Job worker started" in worker_log.read_text()

        wait_until(worker_started, "the job worker did not start", interval=0.2)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    console = banner + rest
    assert "api: 127.0.0.1 GET /api/v1/projects/ 401 not_authenticated\n" in console
    # One line per request: no JSON log line with the Lambda context of each refused request.
    assert "function_arn" not in console and "cold_start" not in console
    assert "Warning" not in console and "Traceback" not in console, console
    worker_log = worker_log.read_text()
    assert "Warning" not in worker_log and "Traceback" not in worker_log, worker_log
