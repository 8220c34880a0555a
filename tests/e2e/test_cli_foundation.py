"""The unmodified qfieldcloud-cli 0.18.0 against the local stack: auth, projects, collaborators."""

import re
import uuid

import pytest

pytestmark = pytest.mark.e2e


def ok(result):
    assert result.returncode == 0 and not result.http_error, result.output
    assert "Traceback" not in result.output, result.output
    return result


def test_status(stack):
    body = ok(stack.cli("--json", "status")).json()
    assert (body["database"], body["storage"]) == ("ok", "ok")


def test_login_good_and_bad_password(stack):
    bad = stack.cli("login", "alice", "wrong-password")
    assert bad.returncode == 0
    assert re.search(r'Requested ".*/auth/login/" and got "401 ', bad.output), bad.output
    assert "authentication_failed" in bad.output
    human = ok(stack.cli("login", "alice", "pw-alice-secret"))
    assert "Welcome to QFieldCloud, alice." in human.stderr
    assert 'export QFIELDCLOUD_TOKEN="' in human.stderr
    body = ok(stack.cli("--json", "login", "alice", "pw-alice-secret")).json()
    assert body["username"] == "alice" and len(body["token"]) >= 32


def test_projects_and_collaborators_through_the_cli(stack):
    token = stack.login("alice", "pw-alice-secret")
    cli = lambda *args: stack.cli(*args, token=token)  # noqa: E731

    created = ok(cli("--json", "create-project", "--description", "acc", "acc_proj")).json()
    pid = created["id"]
    assert uuid.UUID(pid)
    assert (created["name"], created["owner"], created["is_public"], created["description"]) == (
        "acc_proj", "alice", False, "acc")
    assert "project_type" in created

    table = ok(cli("list-projects")).stderr
    assert "| ID | OWNER/NAME | IS PUBLIC | PUBLIC ROLE | PROJECT TYPE | DESCRIPTION |" in re.sub(
        r" +", " ", table)
    assert "alice/acc_proj" in table

    for i in range(25):
        ok(cli("create-project", f"bulk_{i:02d}"))
    listed = ok(cli("--json", "list-projects")).json()
    ids = [project["id"] for project in listed]
    assert len(ids) == 26 and len(set(ids)) == 26  # the CLI pages by 20: X-Next-Page followed
    assert len(ok(cli("--json", "list-projects", "--limit", "1", "--offset", "0")).json()) == 1

    assert ok(cli("--json", "get-project", pid)).json()["id"] == pid
    patched = ok(cli("--json", "patch-project", pid, "--description", "new", "--is-public")).json()
    assert (patched["description"], patched["is_public"]) == ("new", True)

    added = ok(cli("collaborators-add", pid, "bob", "editor"))
    assert f'Collaborator "bob" added to project with id "{pid}" with role "editor".' in added.output
    assert {"collaborator": "bob", "role": "editor"}.items() <= ok(
        cli("--json", "collaborators-get", pid)).json()[0].items()
    ok(cli("collaborators-patch", pid, "bob", "manager"))
    assert ok(cli("--json", "collaborators-get", pid)).json()[0]["role"] == "manager"
    removed = ok(cli("collaborators-remove", pid, "bob"))
    assert 'Collaborator "bob" removed' in removed.output
    assert ok(cli("--json", "collaborators-get", pid)).json() == []

    assert f'Deleted project "{pid}".' in ok(cli("delete-project", pid)).stderr
    gone = cli("get-project", pid)
    assert gone.returncode == 0
    assert re.search(rf'Requested ".*/projects/{pid}/\?limit=20&offset=0" and got "404 ', gone.output)


def test_a_bogus_token_and_logout(stack):
    bogus = stack.cli("list-projects", token="bogus-token")
    assert re.search(r'and got "401 ', bogus.output), bogus.output

    token = stack.login("bob", "pw-bob-secret")
    assert not stack.cli("list-projects", token=token).http_error
    logout = ok(stack.cli("logout", token=token))
    assert "Successfully logged out." in logout.output
    after = stack.cli("list-projects", token=token)
    assert re.search(r'and got "401 ', after.output), after.output
    assert "token_authentication_failed" in after.output
