"""Whose address a request comes from (chalicelib/http/client_address.py): the viewer's address
the edge reports, on a request that carries the stack's edge secret; API Gateway's `sourceIp` on
any other, whatever it claims."""

from __future__ import annotations

import pytest
from chalice.app import Request

from chalicelib.http.client_address import EDGE_SECRET_HEADER, VIEWER_ADDRESS_HEADER, client_address

SECRET = "s3cr3t-of-the-stack-s3cr3t-of-the-stack-s3c"
EDGE = "130.176.0.12"  # a CloudFront server, as API Gateway sees it


@pytest.fixture(autouse=True)
def edge_secret(override_settings):
    override_settings(edge_secret=SECRET)


def address(headers: dict[str, str], source_ip: str | None = EDGE) -> str | None:
    """What the rule makes of a request as API Gateway hands it to the function."""
    event = {
        "multiValueQueryStringParameters": None, "headers": headers, "pathParameters": None,
        "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"httpMethod": "POST", "resourcePath": "/api/v1/auth/login",
                           "identity": {"sourceIp": source_ip}},
    }
    return client_address(Request(event))


@pytest.mark.parametrize(("reported", "viewer"), [
    ("198.51.100.7", "198.51.100.7"),
    ("2001:db8:1:2::7", "2001:db8:1:2::7"),
    ("2001:DB8:0001:0002:0000:0000:0000:0007", "2001:db8:1:2::7"),  # as the lockout counts it
    (" 203.0.113.9 ", "203.0.113.9"),
])
def test_with_the_edge_secret_the_address_is_the_viewers(reported: str, viewer: str) -> None:
    assert address({VIEWER_ADDRESS_HEADER: reported, EDGE_SECRET_HEADER: SECRET}) == viewer


def test_header_names_are_read_in_any_case() -> None:
    headers = {VIEWER_ADDRESS_HEADER.lower(): "198.51.100.7", EDGE_SECRET_HEADER.upper(): SECRET}
    assert address(headers) == "198.51.100.7"


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET[:-1], SECRET + "x", SECRET.upper(),
                                    "é" + SECRET])
def test_without_the_right_secret_the_address_is_the_callers_own(secret: str | None) -> None:
    """What anyone calling the execute-api URL directly may send is ignored, never an error."""
    headers = {VIEWER_ADDRESS_HEADER: "198.51.100.7"}
    if secret is not None:
        headers[EDGE_SECRET_HEADER] = secret
    assert address(headers) == EDGE
    assert address(headers, source_ip="2001:db8::99") == "2001:db8::99"


@pytest.mark.parametrize("reported", [
    None, "", "unknown", "198.51.100.7:443", "[2001:db8::7]:443", "198.51.100.7, 203.0.113.9", "999.1.1.1",
])
def test_a_malformed_viewer_address_falls_back_to_the_callers_own(reported: str | None) -> None:
    headers = {EDGE_SECRET_HEADER: SECRET}
    if reported is not None:
        headers[VIEWER_ADDRESS_HEADER] = reported
    assert address(headers) == EDGE


def test_a_stack_without_an_edge_secret_believes_no_one(override_settings) -> None:
    override_settings(edge_secret=None)
    assert address({VIEWER_ADDRESS_HEADER: "198.51.100.7", EDGE_SECRET_HEADER: ""}) == EDGE
    assert address({VIEWER_ADDRESS_HEADER: "198.51.100.7", EDGE_SECRET_HEADER: SECRET}) == EDGE


def test_a_request_without_a_source_ip_has_no_address() -> None:
    assert address({}, source_ip=None) is None
