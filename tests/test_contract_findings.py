"""What the schema fuzzing (tests/e2e/test_api_contract.py) found, kept as plain regressions."""

import io
import json
import logging

import pytest


@pytest.mark.parametrize("path", ["members/acme/", "organizations/acme/teams/field/members/"])
@pytest.mark.parametrize("member", ["", "   ", "x" * 255])
def test_a_blank_or_overlong_member_is_a_validation_error(alice, path, member):
    """It was a DynamoDB key error (an empty key attribute): 500 `unknown_error`."""
    assert alice.post("organizations/", json={"username": "acme"}).status == 201
    assert alice.post("organizations/acme/teams/", json={"team": "field"}).status == 201
    reply = alice.post(path, json={"member": member})
    assert (reply.status, reply.code) == (400, "validation_error"), reply.content


def test_input_that_breaks_a_rule_is_logged_as_refused_not_as_an_unexpected_error(users):
    from chalicelib.observability import logger

    alice = users("alice")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    try:
        assert alice.post("projects/", json={"name": "no spaces allowed"}).status == 400
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    assert [line["message"] for line in lines] == ["Request refused"]
    assert lines[0]["code"] == "validation_error" and "exception" not in lines[0]
