"""The local stack as a user runs it: start, create a user, stop with Ctrl-C, start again."""

import pytest

from tests.e2e.stack import ADMIN_PASSWORD, LocalStack

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
    finally:
        assert stack.stop() == 0

    stack.start()
    try:
        assert "Created user" not in "".join(stack.output)
        token = stack.login("carol", "pw-carol-secret")
        project = stack.cli("--json", "get-project", pid, token=token).json()
        assert (project["id"], project["name"], project["owner"]) == (pid, "survivor", "carol")
        assert stack.login("admin", ADMIN_PASSWORD)
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
