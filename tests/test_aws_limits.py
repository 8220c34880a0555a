"""The local API Gateway keeps AWS's limits, always, and answers as the deployed gateway does:
413 above 10 MB or above a Lambda event (base64 included), 502 for an answer larger than a Lambda
answer, 504 after 29 s while the function goes on."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid

from chalicelib.http import limits
from tests.files_helpers import everything


def deltafile(size: int) -> bytes:
    """A valid deltafile of about `size` bytes, with fewer than 10,000 deltas."""
    note = "x" * 2000

    def delta(number: int) -> dict:
        return {"uuid": str(uuid.uuid4()), "clientId": str(uuid.uuid4()), "exportId": "e",
                "localLayerId": "points", "sourceLayerId": "points", "localLayerName": "points",
                "localLayerCrs": "EPSG:4326", "localPk": str(number), "sourcePk": "1",
                "method": "create", "new": {"geometry": "Point (7 46)", "attributes": {"note": note}}}

    deltas = [delta(n) for n in range(size // len(json.dumps(delta(0))) + 1)]
    return json.dumps({"version": "1.0", "id": str(uuid.uuid4()), "project": "p", "files": [],
                       "deltas": deltas}).encode()


def test_a_7_mb_deltafile_gets_the_gateways_413_and_stores_nothing(alice, pid):
    before = everything()
    content = deltafile(7 * 1000 * 1000)
    assert len(json.loads(content)["deltas"]) < 10_000
    reply = alice.post(f"deltas/{pid}/", files={"text": (None, "{}"), "file": ("d.json", content)})
    assert reply.status == 413 and reply.json() == {"code": "payload_too_large",
                                                    "message": limits.TOO_LARGE_MESSAGE}
    assert everything() == before


def test_a_body_above_10_mb_is_refused_whatever_the_route(alice, pid):
    big = os.urandom(limits.API_GATEWAY_REQUEST_BYTES + 1)
    for method, path in [("POST", "projects/"), ("PATCH", f"projects/{pid}/"), ("PUT", f"files/{pid}/a/")]:
        reply = alice.request(method, path, raw_body=big, headers={"Content-Type": "application/json"})
        assert reply.status == 413 and reply.code == "payload_too_large", (method, path)


def test_a_small_upload_goes_to_the_function_up_to_the_limit(alice, pid):
    from tests.files_helpers import upload

    assert upload(alice, pid, "a.bin", os.urandom(limits.LARGE_BODY_BYTES - 1000)).status == 201


def test_a_function_that_takes_longer_than_29_s_is_a_504_and_goes_on(api):
    from devstack.gateway import ApiGateway

    finished = threading.Event()

    def slow(event, context):
        time.sleep(0.5)
        answer = api.gateway.handler(event, context)
        finished.set()
        return answer

    gateway = ApiGateway(api.gateway.app, slow, timeout_seconds=0.1)
    response = gateway.handle("GET", "/api/v1/status/", [("Host", "testserver")], b"")
    assert response.status == 504
    assert json.loads(response.body) == {"code": "unknown_error", "message": "Endpoint request timed out"}
    assert finished.wait(10)  # the function went on
    assert limits.INTEGRATION_TIMEOUT_SECONDS == 29 and api.gateway.timeout_seconds == 29


def test_an_answer_larger_than_lambdas_is_a_502(api):
    from devstack.gateway import ApiGateway

    def bloated(event, context):
        answer = api.gateway.handler(event, context)
        return {**answer, "body": "x" * limits.LAMBDA_ANSWER_BYTES}

    response = ApiGateway(api.gateway.app, bloated).handle("GET", "/api/v1/status/", [], b"")
    assert response.status == 502
    assert json.loads(response.body) == {"code": "unknown_error", "message": "Internal server error"}
