"""Deltafiles that break what the store can hold are refused whole, naming the delta, instead of
being stored in a form that breaks the lists later or lost behind a 200; whatever older code
stored still lists; a write that fails is an error answer."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.files_helpers import qgs, upload
from tests.test_deltas import push
from tests.test_input_findings import assert_refused


@pytest.fixture
def pid(alice) -> str:
    """alice's project with a QGIS file (its processing job is never run: not needed here)."""
    project_id = alice.create_project("survey")["id"]
    assert upload(alice, project_id, "project.qgs", qgs()).status == 201
    return project_id


def a_delta(**fields) -> dict:
    delta = {"uuid": str(uuid.uuid4()), "clientId": str(uuid.uuid4()), "localLayerId": "points",
             "sourceLayerId": "points", "localPk": "1", "sourcePk": "1", "method": "create",
             "new": {"attributes": {"name": "a"}}}
    return {**delta, **fields}


def a_deltafile(project_id: str, *deltas: dict, **fields) -> dict:
    return {"version": "1.0", "id": str(uuid.uuid4()), "project": project_id, "files": [],
            "deltas": list(deltas), **fields}


def nested(levels: int):
    value = "deep"
    for _ in range(levels):
        value = [value]
    return value


def listed(client, project_id: str, deltafile_id: str | None = None) -> list[dict]:
    path = f"deltas/{project_id}/" + (f"{deltafile_id}/" if deltafile_id else "")
    reply = client.get(path)
    assert reply.status == 200, reply.content[:300]
    return reply.json()


def test_a_value_nested_300_levels_is_refused_naming_the_delta_and_nothing_is_stored(alice, pid):
    fine, deep = a_delta(), a_delta(new={"attributes": {"name": nested(300)}})
    reply = push(alice, pid, a_deltafile(pid, fine, deep))
    assert_refused(reply, 400, "invalid_deltafile")
    assert "deltas.1" in reply.json()["message"] or deep["uuid"] in reply.json()["message"]
    assert listed(alice, pid) == []


def test_values_nested_a_few_levels_are_taken(alice, pid):
    attributes = {"tags": nested(10), "map": {"a": {"b": [1, {"c": 2}]}}}
    body = a_deltafile(pid, a_delta(new={"attributes": attributes}))
    assert push(alice, pid, body).status == 200
    (item,) = listed(alice, pid, body["id"])
    assert item["content"]["new"] == body["deltas"][0]["new"]


def _store_as_older_code_did(project_id: str, content: dict, feedback=None) -> str:
    """A delta item written as the code before these bounds wrote one (its content and feedback
    as JSON text), whatever it holds; its deltafile id."""
    from chalicelib.models import Delta, ListCount
    from chalicelib.models.base import shared_connection
    from chalicelib.models.counts import count_id

    deltafile_id, at = str(uuid.uuid4()), "2026-01-01T00:00:00.000000+0000"
    item = {"project_id": {"S": project_id}, "id": {"S": content["uuid"]},
            "seq": {"S": f"2026-01-01T00:00:00+00:00#{deltafile_id}#000000"},
            "deltafile_id": {"S": deltafile_id}, "client_id": {"S": content["clientId"]},
            "created_by": {"S": "alice"}, "created_at": {"S": at}, "updated_at": {"S": at},
            "status": {"S": "error"}, "content": {"S": json.dumps(content)}}
    if feedback is not None:
        item["feedback"] = {"S": json.dumps(feedback)}
    shared_connection().client.put_item(TableName=Delta.Meta.table_name, Item=item)
    for list_id in (count_id("deltas", project_id), count_id("deltafile", project_id, deltafile_id)):
        ListCount(list_id).update(actions=[ListCount.count.add(1)])
    return deltafile_id


def test_deltas_stored_deeply_nested_by_older_code_are_listed_for_everyone(alice, pid):
    content = a_delta(new={"attributes": {"name": nested(300)}})
    feedback = {"msg": "failed", "conflicts": [nested(300)]}
    deltafile_id = _store_as_older_code_did(pid, content, feedback)
    page = alice.get(f"deltas/{pid}/?limit=1")
    assert page.status == 200, page.content[:300]
    for items in (listed(alice, pid), listed(alice, pid, deltafile_id), page.json()):
        (item,) = items
        assert item["content"] == content and item["last_feedback"] == feedback
        assert item["status"] == "STATUS_ERROR" and "failed" in item["output"]


@pytest.mark.parametrize("where, value", [
    ("uuid", ""), ("uuid", "d" * 1100), ("uuid", "not-a-uuid"), ("uuid", 7),
    ("id", ""), ("id", "f" * 1000), ("id", "not-a-uuid"),
])
def test_delta_uuids_and_deltafile_ids_that_are_not_uuids_are_refused(alice, pid, where, value):
    good = a_delta()
    body = (a_deltafile(pid, a_delta(), a_delta(uuid=value), good) if where == "uuid"
            else a_deltafile(pid, good, id=value))
    reply = push(alice, pid, body)
    assert_refused(reply, 400, "invalid_deltafile")
    assert ("deltas.1.uuid" if where == "uuid" else "`id`") in reply.json()["message"]
    assert listed(alice, pid) == []  # the valid deltas of the file neither


def test_uuids_in_any_case_are_stored_and_listed_in_canonical_form(alice, pid):
    delta = a_delta()
    body = a_deltafile(pid, {**delta, "uuid": delta["uuid"].upper()}, id=str(uuid.uuid4()).upper())
    assert push(alice, pid, body).status == 200
    for path_id in (body["id"], body["id"].lower()):
        (item,) = listed(alice, pid, path_id)
        assert (item["id"], item["deltafile_id"]) == (delta["uuid"], body["id"].lower())
        assert item["content"]["uuid"] == delta["uuid"]
    assert push(alice, pid, {**body, "deltas": [delta]}).status == 200  # the same delta: stored once
    assert len(listed(alice, pid)) == 1


@pytest.mark.parametrize("fields", [
    {"clientId": "c" * 600, "localLayerId": "l" * 600},
    {"localLayerId": "é" * 600},
    {"localPk": "x" * 2000},
    {"sourceLayerId": "s" * 2000},
    {"sourcePk": "p" * 2000},
    {"clientId": "\ud800"},
])
def test_client_key_parts_that_cannot_be_a_dynamodb_key_are_refused(alice, pid, fields):
    reply = push(alice, pid, a_deltafile(pid, a_delta(), a_delta(**fields)))
    assert_refused(reply, 400, "invalid_deltafile")
    assert "deltas.1." in reply.json()["message"]
    assert listed(alice, pid) == []


def test_the_longest_accepted_client_key_fits_a_dynamodb_sort_key(alice, pid):
    from chalicelib.models import deltas
    from chalicelib.services.inputs import MAX_CLIENT_ID_BYTES, MAX_LAYER_ID_BYTES, MAX_PK_BYTES

    longest = a_delta(clientId="c" * MAX_CLIENT_ID_BYTES, localLayerId="l" * MAX_LAYER_ID_BYTES,
                      localPk="p" * MAX_PK_BYTES)
    assert len(deltas.client_key(longest).encode()) <= 1024
    assert push(alice, pid, a_deltafile(pid, longest)).status == 200


def test_a_delta_write_that_dynamodb_refuses_is_an_error_not_a_silent_success(alice, pid):
    """A write that fails for another reason than a concurrent upload of the same deltas (here an
    empty key, which older checks let through) raises, so the push answers 503."""
    from chalicelib.errors import DeltasNotStored
    from chalicelib.models import Delta
    from chalicelib.services import deltas

    refused = Delta(pid, "", seq="s", deltafile_id=str(uuid.uuid4()), client_id="c", created_by="alice",
                    status="pending", content_json="{}")
    with pytest.raises(DeltasNotStored) as raised:
        deltas._write_new([refused])
    assert (raised.value.status, raised.value.code) == (503, "deltas_not_stored")
    assert listed(alice, pid) == []


def test_deltas_stored_meanwhile_by_another_upload_are_skipped_without_error(alice, pid):
    from chalicelib.models import Project, User
    from chalicelib.models.roles import Origin, Role
    from chalicelib.rules.permissions import ProjectRole
    from chalicelib.services import deltas
    from chalicelib.services.auth import Caller
    from chalicelib.services.inputs import Deltafile

    body = a_deltafile(pid, a_delta(), a_delta())
    owner = ProjectRole(Role.ADMIN, Origin.PROJECT_OWNER)
    items = deltas._new_items(Caller(User.get("alice"), "sdk"), Project.get(pid), owner,
                              Deltafile.model_validate(body))
    assert push(alice, pid, {**body, "deltas": body["deltas"][:1]}).status == 200  # won the race
    stored = deltas._write_new(items)
    assert [item.id for item in stored] == [body["deltas"][1]["uuid"]]
    assert len(listed(alice, pid, body["id"])) == 2
    assert alice.get(f"deltas/{pid}/?limit=1").headers["X-Total-Count"] == "2"
