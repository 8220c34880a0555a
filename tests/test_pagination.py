"""Paged lists (docs/api.md, "Conventions") served from DynamoDB in key order: a cursor in `X-Next-Page`,
offsets as the SDK and QField send them, totals from counters kept with the items."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.files_helpers import follow, qgs, upload

NAMES = ["Z.txt", "a.txt", "b/c.txt", "b/d.txt", "café.txt", "e.txt", "日本.txt"]  # code point order


@pytest.fixture(autouse=True)
def no_bookmarks():
    """Each test starts without the bookmarks an earlier one left in this process."""
    from chalicelib.http import pagination

    pagination._bookmarks.clear()
    yield
    pagination._bookmarks.clear()


def names(reply) -> list[str]:
    return [item["name"] for item in reply.json()]


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def as_the_sdk_pages(client, path: str, limit: int = 20) -> list:
    """What the SDK does: `limit` and `offset` on every request, and from `X-Next-Page` only
    those two (int() of each: both must be there)."""
    items, offset = [], 0
    while True:
        reply = client.get(f"{path}{'&' if '?' in path else '?'}limit={limit}&offset={offset}")
        assert reply.status == 200, reply.content
        items += reply.json()
        next_url = reply.headers.get("X-Next-Page")
        if not next_url:
            return items
        query = query_of(next_url)
        limit, offset = int(query["limit"][0]), int(query["offset"][0])


@pytest.fixture
def files(alice, pid):
    for name in reversed(NAMES):
        assert upload(alice, pid, name, name.encode()).status == 201
    return alice, pid


def test_file_pages_follow_the_cursor_in_key_order(files):
    alice, pid = files
    first = alice.get(f"files/{pid}/?limit=3")
    assert names(first) == NAMES[:3]
    assert first.headers["X-Total-Count"] == "7" and "X-Previous-Page" not in first.headers
    query = query_of(first.headers["X-Next-Page"])
    assert (query["limit"], query["offset"]) == (["3"], ["3"]) and query["cursor"]

    second = alice.get(first.headers["X-Next-Page"])
    assert names(second) == NAMES[3:6]
    assert second.headers["X-Previous-Page"] == f"http://testserver/api/v1/files/{pid}/?limit=3"
    last = alice.get(second.headers["X-Next-Page"])
    assert names(last) == NAMES[6:]
    assert "X-Next-Page" not in last.headers and last.headers["X-Total-Count"] == "7"
    assert last.headers["X-Previous-Page"].endswith("?limit=3&offset=3")
    assert names(alice.get(f"files/{pid}/")) == NAMES


@pytest.mark.parametrize("warm", [True, False], ids=["bookmarked", "counted"])
def test_offsets_alone_give_the_same_pages(files, warm):
    from chalicelib.http import pagination

    alice, pid = files
    if not warm:
        pagination.BOOKMARK_SECONDS, saved = -1, pagination.BOOKMARK_SECONDS
    try:
        assert [f["name"] for f in as_the_sdk_pages(alice, f"files/{pid}/", limit=2)] == NAMES
        assert names(alice.get(f"files/{pid}/?limit=2&offset=5")) == NAMES[5:7]
        assert names(alice.get(f"files/{pid}/?offset=5")) == NAMES  # offset alone: everything
        beyond = alice.get(f"files/{pid}/?limit=2&offset=7")
        assert beyond.json() == [] and beyond.headers["X-Total-Count"] == "7"
    finally:
        if not warm:
            pagination.BOOKMARK_SECONDS = saved


def test_a_cursor_that_does_not_fit_is_ignored_and_the_offset_decides(files, users):
    from chalicelib.http.pagination import encode_cursor

    alice, pid = files
    cursor = query_of(alice.get(f"files/{pid}/?limit=3").headers["X-Next-Page"])["cursor"][0]
    other = alice.create_project("other")["id"]
    wrong = [
        "garbage!",
        cursor,  # made for offset 3, sent with offset 4
        encode_cursor(4, {"name": {"S": "b/c.txt"}, "project_id": {"S": other}}),  # a partition
        encode_cursor(4, {"name": {"M": {}}}),
        "x" * 5000,
    ]
    for bad in wrong:
        reply = alice.get(f"files/{pid}/?limit=2&offset=4&cursor={quote(bad)}")
        assert reply.status == 200 and names(reply) == NAMES[4:6], bad


def test_a_cursor_continues_after_the_last_item_seen_while_the_offset_is_exact(files):
    alice, pid = files
    first = alice.get(f"files/{pid}/?limit=3")
    assert alice.delete(f"files/{pid}/{NAMES[0]}/").status == 204
    followed = alice.get(first.headers["X-Next-Page"])
    assert names(followed) == NAMES[3:6] and followed.headers["X-Total-Count"] == "6"
    by_offset = alice.get(f"files/{pid}/?limit=3&offset=3")  # the list is shorter: counted again
    assert names(by_offset) == NAMES[4:7]


def test_the_file_count_follows_uploads_and_deletions(alice, pid):
    from chalicelib.models import Project

    def total() -> str:
        return alice.get(f"files/{pid}/?limit=1").headers["X-Total-Count"]

    assert total() == "0"
    upload(alice, pid, "a.csv", b"1")
    upload(alice, pid, "b.csv", b"1")
    upload(alice, pid, "a.csv", b"2")  # a new version, not a new file
    assert total() == "2"
    version = alice.get(f"files/{pid}/").json()[0]["versions"][-1]["version_id"]
    assert alice.delete(f"files/{pid}/a.csv/?version={version}").status == 204
    assert total() == "2"
    assert alice.delete(f"files/{pid}/b.csv/").status == 204
    assert total() == "1" and Project.get(pid).file_count == 1


@pytest.fixture
def qgis_project(alice, pid):
    assert upload(alice, pid, "project.qgs", qgs()).status == 201
    return alice, pid


def test_jobs_of_one_type_are_paged_from_their_own_index(qgis_project):
    alice, pid = qgis_project
    from chalicelib.models import Job
    from chalicelib.services import jobs

    ids = []
    for _ in range(3):  # each started before the next is asked for: a waiting one would be reused
        reply = alice.post("jobs/", json={"project_id": pid, "type": "package", "force": True})
        ids.append(reply.json()["id"])
        assert jobs.claim(Job.get(ids[-1]))
    everything = alice.get(f"jobs/?project_id={pid}").json()
    assert [job["type"] for job in everything] == ["process_projectfile", "package", "package", "package"]
    page = alice.get(f"jobs/?project_id={pid}&type=package&limit=2")
    assert [job["id"] for job in page.json()] == ids[:2] and page.headers["X-Total-Count"] == "3"
    assert "type=package" in page.headers["X-Next-Page"]
    assert [job["id"] for job in alice.get(page.headers["X-Next-Page"]).json()] == ids[2:]
    assert [job["id"] for job in as_the_sdk_pages(alice, f"jobs/?project_id={pid}&type=package", 1)] == ids
    assert alice.get(f"jobs/?project_id={pid}&limit=1").headers["X-Total-Count"] == "4"
    none = alice.get(f"jobs/?project_id={pid}&type=delta_apply&limit=5")
    assert none.json() == [] and none.headers["X-Total-Count"] == "0"


def _deltafile(project_id: str, count: int) -> dict:
    delta = {"clientId": "c", "localPk": "1", "sourcePk": "1", "localLayerId": "layer",
             "sourceLayerId": "layer", "method": "patch", "old": {"attributes": {"a": 1}},
             "new": {"attributes": {"a": 2}}}
    return {"version": "1.0", "project": project_id, "id": str(uuid.uuid4()), "files": [],
            "deltas": [{**delta, "uuid": str(uuid.uuid4())} for _ in range(count)]}


def _push(client, project_id: str, data: dict) -> None:
    body = json.dumps(data).encode()
    reply = client.post(f"deltas/{project_id}/", files={"file": ("deltafile.json", body)})
    assert reply.status == 200, reply.content


def test_deltas_are_paged_in_upload_order_both_ways_and_counted_once(qgis_project):
    alice, pid = qgis_project
    first, second = _deltafile(pid, 3), _deltafile(pid, 2)
    _push(alice, pid, first)
    _push(alice, pid, second)
    _push(alice, pid, first)  # QField retries: nothing is stored twice, nor counted
    uploaded = [d["uuid"] for d in first["deltas"] + second["deltas"]]

    page = alice.get(f"deltas/{pid}/?limit=2")
    assert [d["id"] for d in page.json()] == uploaded[:2] and page.headers["X-Total-Count"] == "5"
    assert [d["id"] for d in as_the_sdk_pages(alice, f"deltas/{pid}/", 2)] == uploaded
    newest = alice.get(f"deltas/{pid}/?ordering=-created_at&limit=2")
    assert [d["id"] for d in newest.json()] == uploaded[::-1][:2]
    rest = alice.get(newest.headers["X-Next-Page"])
    assert [d["id"] for d in rest.json()] == uploaded[::-1][2:4]

    one_file = alice.get(f"deltas/{pid}/{first['id']}/?limit=2")
    assert [d["id"] for d in one_file.json()] == uploaded[:2] and one_file.headers["X-Total-Count"] == "3"
    assert [d["id"] for d in alice.get(one_file.headers["X-Next-Page"]).json()] == uploaded[2:3]
    assert [d["id"] for d in alice.get(f"deltas/{pid}/{second['id']}/").json()] == uploaded[3:]


def test_collaborators_are_paged_by_key_and_counted(users):
    alice = users("alice")
    pid = alice.create_project("crowd")["id"]
    people = ["carol", "dave", "erin", "frank", "gina"]
    for name in people:
        users(name)
        alice.post(f"collaborators/{pid}/", data={"collaborator": name, "role": "reader"})
    page = alice.get(f"collaborators/{pid}/?limit=2")
    assert [c["collaborator"] for c in page.json()] == people[:2] and page.headers["X-Total-Count"] == "5"
    assert [c["collaborator"] for c in alice.get(page.headers["X-Next-Page"]).json()] == people[2:4]
    assert [c["collaborator"] for c in as_the_sdk_pages(alice, f"collaborators/{pid}/", 2)] == people


def test_a_whole_list_is_rendered_page_by_page(files, monkeypatch):
    from chalicelib.http import pagination

    alice, pid = files
    rendered = []
    monkeypatch.setattr(pagination, "RENDER_BATCH", 3)
    original = pagination._json_array

    def watching(listing, render):
        return original(listing, lambda batch: rendered.append(len(batch)) or render(batch))

    monkeypatch.setattr(pagination, "_json_array", watching)
    reply = alice.get(f"files/{pid}/")
    assert names(reply) == NAMES and reply.headers["Content-Type"] == "application/json"
    assert rendered == [3, 3, 1]


def test_recount_sets_the_counters_of_data_older_than_them(qgis_project):
    from chalicelib.maintenance.admin import main as admin
    from chalicelib.models import Job, ListCount, Project

    alice, pid = qgis_project
    upload(alice, pid, "data.csv", b"1")
    alice.post("jobs/", json={"project_id": pid, "type": "package"})
    _push(alice, pid, _deltafile(pid, 2))
    before = {path: alice.get(path).headers["X-Total-Count"] for path in (
        f"files/{pid}/?limit=1", f"jobs/?project_id={pid}&limit=1",
        f"jobs/?project_id={pid}&type=package&limit=1", f"deltas/{pid}/?limit=1")}
    Project(pid).update(actions=[Project.file_count.remove()])  # as stored before the counters
    for count in ListCount.scan():
        count.delete()
    for job in Job.by_project.query(pid):
        job.update(actions=[Job.project_and_type.remove()])
    assert alice.get(f"files/{pid}/?limit=1").headers["X-Total-Count"] == "0"

    assert admin(["recount"]) == 0
    assert {path: alice.get(path).headers["X-Total-Count"] for path in before} == before
    assert before[f"jobs/?project_id={pid}&type=package&limit=1"] == "1"


def test_a_listed_file_reads_as_its_model_does(alice, pid, override_settings):
    """The list splices each file's stored versions without parsing them: field for field what
    the model gives."""
    from chalicelib.http.serializers import file_json
    from chalicelib.models import ProjectFile

    override_settings(keep_versions=3)
    for content in (b"1", b"22", b"333", b"4444"):
        upload(alice, pid, "DCIM/é 1.jpg", content)
    upload(alice, pid, "data.gpkg", b"g")
    listed = alice.get(f"files/{pid}/").json()
    assert listed == [file_json(item) for item in ProjectFile.query(pid)]
    assert [len(item["versions"]) for item in listed] == [3, 1]


def _stored_files(pid: str) -> dict[str, dict]:
    """The project's file items as DynamoDB holds them (read with boto3, not the models)."""
    import boto3

    from chalicelib.config import settings
    from chalicelib.models import ProjectFile

    client = boto3.client("dynamodb", region_name=settings.region)
    reply = client.query(TableName=ProjectFile.Meta.table_name, KeyConditionExpression="project_id = :p",
                         ExpressionAttributeValues={":p": {"S": pid}})
    return {item["name"]["S"]: item for item in reply["Items"]}


def _lines(item: dict) -> tuple[str, list, list]:
    form, listed, sources = item["versions"]["S"].split("\n")
    return form, json.loads(listed)["versions"], json.loads(sources)


def _as_typed_maps(item: dict) -> dict:
    """The item with its versions as stored before: a list of maps of typed values."""
    _, listed, sources = _lines(item)
    versions = [{"M": {"version_id": {"S": shown["version_id"]}, "s3_version_id": {"S": s3_version_id},
                       "size": {"N": str(shown["size"])}, "md5sum": {"S": shown["md5sum"]},
                       "sha256": {"S": shown["sha256"]},
                       "uploaded_at": {"S": shown["uploaded_at"].replace("Z", "+0000")},
                       "uploaded_by": {"S": by}}}
                for shown, (s3_version_id, by) in zip(reversed(listed), reversed(sources), strict=True)]
    return {**item, "versions": {"L": versions}}


def test_files_stored_in_an_earlier_form_are_listed_alike_and_rewritten_at_their_next_change(alice, pid):
    import boto3

    from chalicelib.config import settings
    from chalicelib.models import ProjectFile

    for content in (b"1", b"22"):
        upload(alice, pid, "a.txt", content)
    upload(alice, pid, "b.txt", b"b")
    upload(alice, pid, "c.txt", b"c")
    before = alice.get(f"files/{pid}/").json()
    stored = _stored_files(pid)
    assert {name: (_lines(item)[0], len(_lines(item)[1]), len(_lines(item)[2]))
            for name, item in stored.items()} == {
        "a.txt": ("1", 2, 2), "b.txt": ("1", 1, 1), "c.txt": ("1", 1, 1)}

    client = boto3.client("dynamodb", region_name=settings.region)
    client.put_item(TableName=ProjectFile.Meta.table_name, Item=_as_typed_maps(stored["a.txt"]))
    older_form = "0" + stored["b.txt"]["versions"]["S"][1:]
    client.put_item(TableName=ProjectFile.Meta.table_name,
                    Item={**stored["b.txt"], "versions": {"S": older_form}})
    assert "L" in _stored_files(pid)["a.txt"]["versions"]

    assert alice.get(f"files/{pid}/").json() == before
    assert alice.get(f"files/{pid}/?limit=2").json() == before[:2]
    oldest = before[0]["versions"][1]["version_id"]
    assert follow(alice.get(f"files/{pid}/a.txt/?version={oldest}")).content == b"1"

    upload(alice, pid, "a.txt", b"333")
    after = alice.get(f"files/{pid}/").json()
    assert [v["size"] for v in after[0]["versions"]] == [3, 2, 1]
    assert after[0]["versions"][1:] == [{**v, "is_latest": False} for v in before[0]["versions"]]
    assert _lines(_stored_files(pid)["a.txt"])[0] == "1"
