"""Answers that fit Lambda's: JSON compressed for clients that accept gzip, and a redirect to a
copy in S3 for the answer that would not fit even so.

A Lambda function's answer is at most 6 MB (chalicelib/http/limits.py), the body base64-encoded
in it when it is binary, and API Gateway compresses only after that limit applies. So the
function compresses: a JSON answer of more than `MIN_BYTES` to a request whose Accept-Encoding
takes gzip (QField's Qt and `requests` both send it) goes out gzip-compressed, base64-encoded,
which API Gateway passes on as bytes (its binary media types are `*/*`, infra/api.py). A whole
list of 2,000 files of ten versions (6.7 MB of JSON) leaves as 1.6 MB, 2.1 MB base64-encoded:
about 5,800 such files fit. Their checksums and ids are random hex, which no coding shrinks
below half, so a list of 10,000 files of ten versions (8 MB compressed) cannot fit any Lambda
answer: it takes the way below.

An answer larger still (compressed when the client takes gzip) cannot leave the function: a GET
is answered with a 302 to a presigned URL of the same bytes, stored for the moment under the
bucket's temporary prefix (emptied by a lifecycle rule after a day), with their Content-Type and
Content-Encoding; the SDK, `requests` and browsers follow it (docs/api.md, "Limits").
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from typing import Any

from chalicelib.adapters import storage
from chalicelib.http import limits

# Below this a JSON answer is sent as it is: gzip's header and the base64 would not pay off.
MIN_BYTES = 1024
# Lists are compressed at a moderate level: most of the answer is checksums and ids, which no
# level shrinks, and the higher levels cost far more time for the rest.
LEVEL = 6
# What the function may answer beside the body (status, headers), counted generously.
ANSWER_ENVELOPE_BYTES = 16 * 1024


def accepts_gzip(headers: dict[str, str]) -> bool:
    """Whether `Accept-Encoding` takes gzip (q=0 refuses it; `*` stands for it)."""
    value = next((v for k, v in (headers or {}).items() if k.lower() == "accept-encoding"), "")
    for item in value.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower().removeprefix("q=")
            try:
                return not params.strip() or float(q) > 0
            except ValueError:
                return False
    return False


def _header(response: dict[str, Any], name: str) -> str:
    return next((str(v) for k, v in (response.get("headers") or {}).items() if k.lower() == name), "")


def _is_json(response: dict[str, Any]) -> bool:
    media_type = (_header(response, "content-type") or "application/json").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def fitted(event: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The function's answer, compressed for a client that takes gzip, or redirected to S3 when
    it would not fit a Lambda answer."""
    if response.get("isBase64Encoded") or not isinstance(response.get("body"), str):
        return response
    body = response["body"].encode("utf-8")
    headers = dict(response.get("headers") or {})
    encoding = None
    if _is_json(response) and len(body) > MIN_BYTES and accepts_gzip(event.get("headers") or {}):
        body = gzip.compress(body, compresslevel=LEVEL, mtime=0)
        encoding = "gzip"
        headers["Content-Encoding"] = encoding
        headers["Vary"] = "Accept-Encoding"
        response = {**response, "headers": headers, "isBase64Encoded": True,
                    "body": base64.b64encode(body).decode("ascii")}
    if _answer_bytes(response) <= limits.LAMBDA_ANSWER_BYTES - ANSWER_ENVELOPE_BYTES:
        return response
    if event.get("httpMethod") != "GET":
        return response  # no answer of this API but a GET grows with the data
    content_type = _header(response, "content-type") or "application/json"
    key = storage.put_temporary(body, content_type, encoding)
    location = storage.presigned_get(key)
    kept = {k: v for k, v in headers.items() if k.lower().startswith("x-") or k.lower() == "vary"}
    return {"statusCode": 302, "headers": {**kept, "Location": location, "Content-Type": "application/json"},
            "body": json.dumps({"detail": "The answer is too large to send from here: it waits at "
                                          "the Location (a presigned URL).", "location": location}),
            "isBase64Encoded": False}


def _answer_bytes(response: dict[str, Any]) -> int:
    return len(response.get("body") or "") + len(json.dumps(response.get("headers") or {}))


def fitting(app: Callable[[dict, Any], dict]) -> Callable[[dict, Any], dict]:
    """The Lambda entry point around `app` whose answers are `fitted`."""

    def handler(event: dict, context: Any) -> dict:
        return fitted(event, app(event, context))

    return handler
