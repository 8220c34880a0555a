"""Collaborators of a project: add, list, read, change the role, remove."""

import pytest

COLLABORATOR_FIELDS = {"project_id", "collaborator", "role", "created_by", "updated_by",
                       "created_at", "updated_at"}


@pytest.fixture
def project(users):
    alice = users("alice")
    users("bob")
    return alice, alice.create_project("shared")["id"]


def test_add_list_get_patch_put_remove(project):
    alice, pid = project
    reply = alice.post(f"collaborators/{pid}/", data={"collaborator": "bob", "role": "editor"})
    assert reply.status == 201
    body = reply.json()
    assert body.keys() >= COLLABORATOR_FIELDS
    assert (body["project_id"], body["collaborator"], body["role"]) == (pid, "bob", "editor")
    assert body["created_by"] == "alice"

    assert [(c["collaborator"], c["role"]) for c in alice.get(f"collaborators/{pid}/").json()] == [
        ("bob", "editor")]
    assert alice.get(f"collaborators/{pid}/BOB/").json()["role"] == "editor"
    assert alice.patch(f"collaborators/{pid}/bob/", data={"role": "manager"}).json()["role"] == "manager"
    assert alice.put(f"collaborators/{pid}/bob/", json={"role": "reader"}).json()["role"] == "reader"
    assert alice.get(f"collaborators/{pid}/bob/").json()["role"] == "reader"
    assert alice.delete(f"collaborators/{pid}/bob/").status == 204
    assert alice.get(f"collaborators/{pid}/").json() == []
    reply = alice.get(f"collaborators/{pid}/bob/")
    assert (reply.status, reply.code) == (404, "object_not_found")


def test_role_defaults_to_reader(project):
    alice, pid = project
    assert alice.post(f"collaborators/{pid}/", json={"collaborator": "bob"}).json()["role"] == "reader"


@pytest.mark.parametrize("body", [
    {"collaborator": "ghost", "role": "editor"},
    {"collaborator": "alice", "role": "editor"},
    {"collaborator": "bob", "role": "owner"},
    {"role": "editor"},
    {"collaborator": ["bob"], "role": "editor"},
])
def test_invalid_collaborators_are_refused(project, body):
    alice, pid = project
    reply = alice.post(f"collaborators/{pid}/", json=body)
    assert (reply.status, reply.code) == (400, "validation_error")
    assert alice.get(f"collaborators/{pid}/").json() == []


def test_duplicates_are_refused(project):
    alice, pid = project
    alice.post(f"collaborators/{pid}/", data={"collaborator": "bob", "role": "editor"})
    reply = alice.post(f"collaborators/{pid}/", data={"collaborator": "bob", "role": "reader"})
    assert (reply.status, reply.code) == (400, "validation_error")
    assert alice.get(f"collaborators/{pid}/bob/").json()["role"] == "editor"


def test_patch_with_a_bad_role_changes_nothing(project):
    alice, pid = project
    alice.post(f"collaborators/{pid}/", data={"collaborator": "bob", "role": "editor"})
    reply = alice.patch(f"collaborators/{pid}/bob/", data={"role": "superuser"})
    assert (reply.status, reply.code) == (400, "validation_error")
    assert alice.get(f"collaborators/{pid}/bob/").json()["role"] == "editor"


def test_collaborator_list_is_paginated(users):
    alice = users("alice")
    pid = alice.create_project("crowd")["id"]
    for name in ("carol", "dave", "erin"):
        users(name)
        alice.post(f"collaborators/{pid}/", data={"collaborator": name, "role": "reader"})
    page = alice.get(f"collaborators/{pid}/?limit=2")
    assert [c["collaborator"] for c in page.json()] == ["carol", "dave"]
    assert page.headers["X-Total-Count"] == "3" and "offset=2" in page.headers["X-Next-Page"]
