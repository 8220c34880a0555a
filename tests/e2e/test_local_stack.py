"""The local stack as a user runs it: start, create a user, stop with Ctrl-C, start again."""

import http.client
import json
import subprocess
from urllib.parse import urlencode

import pytest
import requests

from tests.e2e.stack import ADMIN_PASSWORD, BIN, LocalStack

pytestmark = pytest.mark.e2e


def test_data_survives_a_restart(tmp_path):
    stack = LocalStack(tmp_path / "data")
    stack.start()
    try:
        first_start = "".join(stack.output)
        assert f"Created user 'admin' with password: {ADMIN_PASSWORD}" in first_start
        assert stack.url in first_start
        assert stack.createuser("carol", "pw-carol-secret").returncode == 0
        token = stack.login("carol", "pw-carol-secret")
        pid = stack.cli("--json", "create-project", "survivor", token=token).json()["id"]
        (tmp_path / "up").mkdir()
        (tmp_path / "up" / "notes.txt").write_text("first")
        stack.cli("upload-files", pid, str(tmp_path / "up"), token=token)
        (tmp_path / "up" / "notes.txt").write_text("second version")
        stack.cli("upload-files", pid, str(tmp_path / "up"), token=token)
        # Parts sent in parallel straight to the AWS stand-in must not garble its recording.
        big = tmp_path / "big.bin"
        big.write_bytes(bytes(range(256)) * (24 * 4096))  # 24 MiB: 3 parts
        transfer = subprocess.run(
            [str(BIN / "qfc-transfer"), "upload", "--parallel", "3", pid, str(big)],
            env={**stack.env, "QFIELDCLOUD_URL": stack.url, "QFIELDCLOUD_TOKEN": token},
            capture_output=True, text=True, timeout=300, check=False)
        assert transfer.returncode == 0, transfer.stderr
        files_before = stack.cli("--json", "list-files", pid, token=token).json()
    finally:
        assert stack.stop() == 0

    stack.start()
    try:
        assert "Created user" not in "".join(stack.output)
        token = stack.login("carol", "pw-carol-secret")
        project = stack.cli("--json", "get-project", pid, token=token).json()
        assert (project["id"], project["name"], project["owner"]) == (pid, "survivor", "carol")
        assert stack.login("admin", ADMIN_PASSWORD)
        assert stack.cli("--json", "list-files", pid, token=token).json() == files_before
        downloaded = stack.cli("download-files", pid, str(tmp_path / "down"), token=token)
        assert "Downloaded 2 file(s)." in downloaded.output, downloaded.output
        assert (tmp_path / "down" / "notes.txt").read_text() == "second version"
        assert (tmp_path / "down" / "big.bin").read_bytes() == big.read_bytes()
        # Both versions' bytes came back with the same S3 version ids as before the restart.
        versions = next(f for f in files_before if f["name"] == "notes.txt")["versions"]
        for version, expected in zip(versions, ["second version", "first"], strict=True):
            reply = requests.get(f"{stack.url}files/{pid}/notes.txt/?version={version['version_id']}",
                                 headers={"Authorization": f"Token {token}"}, timeout=30)
            assert reply.content.decode() == expected
    finally:
        assert stack.stop() == 0


def test_createuser_refuses_a_taken_username(tmp_path):
    stack = LocalStack(tmp_path / "data")
    stack.start()
    try:
        assert stack.createuser("dave", "pw-dave-secret").returncode == 0
        again = stack.createuser("DAVE", "pw-dave-other")
        assert again.returncode == 1 and "taken" in again.stderr
    finally:
        assert stack.stop() == 0


def test_wrong_passwords_lock_out_the_viewer_who_sent_them_not_the_owner(tmp_path):
    """The lockout counts per viewer, as the stack's edge reports it to the API (docs/security.md),
    though the API sees every request come from the edge's own loopback address, as on AWS from
    CloudFront: the attacker and the owner are two loopback addresses of this machine."""
    stack = LocalStack(tmp_path / "data")
    stack.start()
    try:
        assert stack.createuser("erin", "pw-erin-secret").returncode == 0

        def login_from(viewer: str, password: str) -> str:
            connection = http.client.HTTPConnection(stack.host, stack.port, timeout=30,
                                                    source_address=(viewer, 0))
            try:
                connection.request("POST", "/api/v1/auth/login/",
                                   urlencode({"username": "erin", "password": password}),
                                   {"Content-Type": "application/x-www-form-urlencoded"})
                reply = connection.getresponse()
                body = reply.read()
            finally:
                connection.close()
            return "" if reply.status == 200 else json.loads(body)["code"]

        codes = [login_from("127.0.0.2", "a wrong guess") for _ in range(5)]
        assert codes == ["authentication_failed"] * 4 + ["too_many_failed_login_attempts"]
        assert login_from("127.0.0.2", "pw-erin-secret") == "too_many_failed_login_attempts"
        assert login_from("127.0.0.1", "pw-erin-secret") == ""
    finally:
        assert stack.stop() == 0
