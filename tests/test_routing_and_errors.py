"""Requests the API must read the same way whatever the client, and errors always in JSON."""

import uuid

import pytest


def test_unknown_route_is_a_json_404(api):
    reply = api.get("no/such/route/")
    assert reply.status == 404
    assert reply.json()["code"] == "object_not_found"


def test_wrong_method_is_a_json_405_naming_the_allowed_ones(users):
    alice = users("alice")
    reply = alice.delete("projects/")
    assert reply.status == 405
    assert reply.json()["code"] == "method_not_allowed"
    assert reply.headers["Allow"] == "GET, POST"


def test_routes_answer_with_and_without_trailing_slash(users):
    alice = users("alice")
    assert alice.get("projects/").status == 200
    assert alice.get("projects").status == 200


def test_non_uuid_project_id_is_a_validation_error(users):
    alice = users("alice")
    for path in ("projects/pizza/", "collaborators/pizza/", "files/thumbnails/pizza/"):
        reply = alice.get(path)
        assert (reply.status, reply.code) == (400, "validation_error"), path


def test_json_content_type_on_a_bodiless_get_is_tolerated(users):
    alice = users("alice")
    reply = alice.get("projects/", headers={"Content-Type": "application/json"})
    assert reply.status == 200


def test_limit_and_offset_are_ignored_where_they_do_not_apply(users):
    alice = users("alice")
    project = alice.create_project("p1")
    assert alice.get(f"projects/{project['id']}/?limit=20&offset=0").status == 200
    reply = alice.post("projects/?limit=20&offset=0", data={"name": "p2"})
    assert reply.status == 201
    assert alice.get(f"projects/{project['id']}/?unknown=1&format=json").status == 200


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'{"name": ', "application/json"),
        (b"[1, 2]", "application/json"),
        (b"\"just a string\"", "application/json"),
        (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
        (b"name=x", "application/xml"),
        (b"--nope", "multipart/form-data"),
    ],
)
def test_malformed_bodies_are_400_api_error(users, body, content_type):
    alice = users("alice")
    reply = alice.post("projects/", raw_body=body, headers={"Content-Type": content_type})
    assert (reply.status, reply.code) == (400, "api_error")
    assert alice.get("projects/").json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": 12},
        {"name": "ok", "is_public": "maybe"},
        {"name": "ok", "description": ["a"]},
        {"description": "no name"},
        {"name": "ok", "project_type": "unknown"},
    ],
)
def test_wrong_types_and_missing_fields_are_validation_errors(users, body):
    alice = users("alice")
    reply = alice.post("projects/", json=body)
    assert (reply.status, reply.code) == (400, "validation_error")
    assert alice.get("projects/").json() == []


def test_unexpected_exception_is_500_unknown_error_without_trace(users, monkeypatch):
    from chalicelib.services import projects

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(projects, "list_projects", explode)
    alice = users("alice")
    reply = alice.get("projects/")
    assert reply.status == 500
    assert reply.json() == {"code": "unknown_error", "message": "QFieldCloud unknown error."}
    assert b"secret" not in reply.content and b"Traceback" not in reply.content


def test_unknown_project_is_404(users):
    alice = users("alice")
    reply = alice.get(f"projects/{uuid.uuid4()}/")
    assert (reply.status, reply.code) == (404, "object_not_found")


def test_json_answers_carry_a_json_content_type_like_api_gateway(users):
    """Chalice leaves the header out of JSON bodies; API Gateway adds it, and so must the local
    gateway. (tests/client.py checks the same on every request of the suite.)"""
    alice = users("alice")
    pid = alice.create_project("p")["id"]
    for reply in (alice.get("projects/"), alice.get(f"projects/{pid}/"), alice.get("status/"),
                  alice.get("no/such/route/"), alice.delete("projects/")):
        assert reply.headers["Content-Type"].startswith("application/json"), reply.status


@pytest.mark.parametrize("method", ["OPTIONS", "HEAD", "TRACE", "PROPFIND", "CONNECT"])
def test_methods_the_api_does_not_serve_are_json_405s_naming_the_allowed_ones(users, method):
    alice = users("alice")
    for path in ("projects/", "auth/login/", "files/2b9a2b8e-0d1c-4e43-9a4c-2fb1f3f2b1a0/a/b.txt/"):
        reply = alice.request(method, path)
        assert reply.status == 405, (method, path, reply.content)
        assert reply.headers["Content-Type"].startswith("application/json")
        if method != "HEAD":  # HEAD answers carry no body (the HTTP server drops it)
            assert reply.json()["code"] == "method_not_allowed"
        assert reply.headers["Allow"] in ("GET, POST", "POST", "DELETE, GET, POST"), (method, path)


def _aws_refused(code: str, transaction_reason: str | None = None) -> Exception:
    """The exception PynamoDB or boto3 raises when AWS answers `code` (after botocore's retries)."""
    from botocore.exceptions import ClientError
    from pynamodb.exceptions import CancellationReason, TransactWriteError, UpdateError, VerboseClientError

    response = {"Error": {"Code": code, "Message": "refused"}}
    if transaction_reason is not None:
        cause = VerboseClientError(response, "TransactWriteItems",
                                   cancellation_reasons=[None, CancellationReason(code=transaction_reason)])
        return TransactWriteError("Failed to write transaction items", cause=cause)
    if code == "SlowDown":
        return ClientError(response, "PutObject")  # S3, through boto3
    return UpdateError("Failed to update item", cause=ClientError(response, "UpdateItem"))


@pytest.mark.parametrize("refusal", [
    ("ProvisionedThroughputExceededException", None),
    ("ThrottlingException", None),
    ("TransactionConflictException", None),  # a plain write meeting a transaction on its item
    ("TransactionCanceledException", "TransactionConflict"),
    ("SlowDown", None),
])
def test_aws_too_busy_is_a_503_to_retry_and_stores_nothing(users, monkeypatch, refusal):
    """Throttling or a conflicting transaction, once botocore's retries are spent: a request the
    client may send again in a moment, not an unknown error; and the upload is not half-kept."""
    from chalicelib.rules import quota

    def refused(*args, **kwargs):
        raise _aws_refused(*refusal)

    alice = users("alice")
    pid = alice.create_project("busy")["id"]
    monkeypatch.setattr(quota, "reserve", refused)
    reply = alice.post(f"files/{pid}/notes.txt/", files={"file": ("notes.txt", b"field notes")})
    assert reply.status == 503, reply.text
    assert reply.json() == {"code": "service_unavailable",
                            "message": "AWS was too busy to answer this request just now; send it again "
                                       "in a moment."}
    monkeypatch.undo()
    assert alice.get(f"files/{pid}/").json() == []
    assert alice.post(f"files/{pid}/notes.txt/", files={"file": ("notes.txt", b"field notes")}).status == 201


@pytest.mark.parametrize("refusal", [("AccessDeniedException", None), ("TransactionCanceledException",
                                                                     "ConditionalCheckFailed")])
def test_other_aws_refusals_stay_unknown_errors(users, monkeypatch, refusal):
    """Only load and conflicts are worth a retry: a refused permission or an unexpected failed
    condition is a fault to look at, a 500."""
    from chalicelib.services import projects

    def refused(*args, **kwargs):
        raise _aws_refused(*refusal)

    monkeypatch.setattr(projects, "list_projects", refused)
    reply = users("alice").get("projects/")
    assert reply.status == 500 and reply.json()["code"] == "unknown_error"
