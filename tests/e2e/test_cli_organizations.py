"""The unmodified qfieldcloud-cli 0.18.0 against the local stack: users, organization members,
teams and team members, and a team's role on an organization's project (issue 10)."""

import re

import pytest

from tests.e2e.stack import ADMIN_PASSWORD

pytestmark = pytest.mark.e2e


def ok(result):
    assert result.returncode == 0 and not result.http_error, result.output
    assert "Traceback" not in result.output, result.output
    return result


def test_create_user_and_again_with_exist_ok(stack):
    admin = stack.login("admin", ADMIN_PASSWORD)
    created = ok(stack.cli("create-user", "carol", "pw-carol-secret", "carol@example.com", token=admin))
    assert 'Created user "carol".' in created.output
    again = ok(stack.cli("create-user", "--exist-ok", "carol", "pw-carol-secret", "carol@example.com",
                         token=admin))
    assert 'User "carol" already exists.' in again.output
    refused = stack.cli("create-user", "carol", "pw-carol-secret", "carol@example.com", token=admin)
    assert re.search(r'Requested ".*/users/" and got "409 ', refused.output), refused.output
    assert "object_already_exists" in refused.output
    assert ok(stack.cli("--json", "login", "carol", "pw-carol-secret")).json()["username"] == "carol"
    bob = stack.login("bob", "pw-bob-secret")
    denied = stack.cli("create-user", "dave", "pw-dave-secret", "dave@example.com", token=bob)
    assert re.search(r'and got "403 ', denied.output), denied.output


def test_members_teams_and_a_teams_project(stack):
    assert stack.createorg("org1", "alice").returncode == 0
    admin = stack.login("admin", ADMIN_PASSWORD)
    ok(stack.cli("create-user", "--exist-ok", "erin", "pw-erin-secret", "erin@example.com", token=admin))
    alice = stack.login("alice", "pw-alice-secret")
    bob = stack.login("bob", "pw-bob-secret")
    erin = stack.login("erin", "pw-erin-secret")

    def cli(*args, token=alice):
        return ok(stack.cli(*args, token=token))

    # Members: add, get, patch, remove.
    added = cli("members-add", "org1", "bob", "member")
    assert 'Member "bob" added to organization "org1" with role "member".' in added.output
    cli("members-add", "--public", "org1", "erin", "admin")
    members = cli("--json", "members-get", "org1").json()
    assert [(m["member"], m["role"], m["is_public"]) for m in members] == [
        ("bob", "member", False), ("erin", "admin", True)]
    assert "bob\tmember" in cli("members-get", "org1").output
    patched = cli("members-patch", "org1", "erin", "member")
    assert 'Member "erin" changed role in organization "org1" to role "member".' in patched.output
    removed = cli("members-remove", "org1", "erin")
    assert 'Member "erin" removed organization "org1".' in removed.output
    assert [m["member"] for m in cli("--json", "members-get", "org1").json()] == ["bob"]

    # Teams: create, get, patch (rename), and their members.
    assert 'Team "t1" created in organization "org1".' in cli("teams-create", "org1", "t1").output
    assert cli("--json", "teams-get", "org1", "t1").json() == {
        "team": "t1", "organization": "org1", "members": []}
    joined = cli("team-members-add", "org1", "t1", "bob")
    assert 'Member "bob" added to team "t1" in organization "org1".' in joined.output
    assert cli("--json", "team-members-list", "org1", "t1").json() == [{"member": "bob"}]
    renamed = cli("teams-patch", "org1", "t1", "--name", "field")
    assert 'Team "t1" in organization "org1" was renamed to "field".' in renamed.output
    got = cli("teams-get", "org1", "field")
    assert 'Team "field" in organization "org1":' in got.output and "Members: bob" in got.output
    assert [t["team"] for t in cli("--json", "teams-list", "org1").json()] == ["field"]

    # A project of the organization with the team as collaborator.
    pid = cli("--json", "create-project", "--owner", "org1", "orgmap").json()["id"]
    cli("collaborators-add", pid, "@org1/field", "editor")
    listed = cli("--json", "list-projects", token=bob).json()
    assert [(p["id"], p["owner"], p["user_role"], p["user_role_origin"]) for p in listed] == [
        (pid, "org1", "editor", "team_member")]
    read = cli("--json", "get-project", pid, token=bob).json()
    assert (read["user_role"], read["user_role_origin"]) == ("editor", "team_member")
    assert cli("--json", "list-files", pid, token=bob).json() == []
    outsider = stack.cli("get-project", pid, token=erin)
    assert re.search(r'and got "40[34] ', outsider.output), outsider.output
    assert pid not in [p["id"] for p in cli("--json", "list-projects", token=erin).json()]

    # Leaving the team ends the access at once.
    left = cli("team-members-remove", "org1", "field", "bob")
    assert 'Member "bob" removed from team "field" in organization "org1".' in left.output
    assert cli("--json", "team-members-list", "org1", "field").json() == []
    gone = stack.cli("get-project", pid, token=bob)
    assert re.search(r'and got "403 ', gone.output), gone.output
    assert cli("--json", "list-projects", token=bob).json() == []

    deleted = cli("teams-delete", "org1", "field")
    assert 'Team "field" was deleted from organization "org1".' in deleted.output
    assert cli("--json", "teams-list", "org1").json() == []
    assert cli("--json", "current-subscription", "org1", token=bob).json()["storage_used_bytes"] == 0
