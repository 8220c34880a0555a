"""The gate in front of the local S3 stand-in when the stack is reachable from the network.

moto accepts any request, signed or not, so it only ever listens on loopback. When clients
elsewhere need S3 (a phone running QField, with `QFC_HOST=0.0.0.0`), they are handed presigned
URLs on this machine's public address, and this gate listens there: a request whose presigned
signature is valid and unexpired (checked with botocore's own SigV4 signer, against the stack's
secret key, which is random at every start) is passed on to moto; anything else gets S3's 403
`AccessDenied`. So nobody on the network can list, read or write what no presigned URL the API
handed out allows.
"""

from __future__ import annotations

import hmac
import http.client
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .http_server import HOP_BY_HOP, HttpServer

ALGORITHM = "AWS4-HMAC-SHA256"
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_EXPIRES_SECONDS = 7 * 24 * 3600  # what S3 itself allows
CLOCK_SKEW = timedelta(minutes=15)
STREAM_CHUNK = 1024 * 1024
DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
          b"<Message>Only requests signed with the stack's credentials, unexpired, are accepted here."
          b"</Message></Error>")


def presigned_signature_is_valid(
    method: str, host: str, raw_path: str, raw_query: str, headers: dict[str, str],
    access_key: str, secret_key: str, now: datetime | None = None,
) -> bool:
    """Whether a request carries a valid, unexpired SigV4 query signature (a presigned URL) made
    with these credentials. `raw_path` and `raw_query` are as the client sent them."""
    pairs = [pair for pair in raw_query.split("&") if pair]
    params = {unquote(k): unquote(v) for k, v in parse_qsl(raw_query, keep_blank_values=True)}
    try:
        if params["X-Amz-Algorithm"] != ALGORITHM:
            return False
        key_id, date, region, service, terminator = params["X-Amz-Credential"].split("/")
        signed_at = datetime.strptime(params["X-Amz-Date"], SIGV4_TIMESTAMP).replace(tzinfo=UTC)
        expires = int(params["X-Amz-Expires"])
        signed_headers = params["X-Amz-SignedHeaders"].split(";")
        signature = params["X-Amz-Signature"]
    except (KeyError, ValueError):
        return False
    now = now or datetime.now(UTC)
    if (key_id != access_key or service != "s3" or terminator != "aws4_request"
            or date != params["X-Amz-Date"][:8] or not 0 < expires <= MAX_EXPIRES_SECONDS
            or now > signed_at + timedelta(seconds=expires) or signed_at > now + CLOCK_SKEW):
        return False
    lowered = {name.lower(): value for name, value in headers.items()}
    if "host" not in signed_headers or any(name not in lowered for name in signed_headers):
        return False
    unsigned_query = "&".join(pair for pair in pairs if not pair.startswith("X-Amz-Signature="))
    request = AWSRequest(method=method, url=f"http://{host}{raw_path}?{unsigned_query}",
                         headers={name: lowered[name] for name in signed_headers})
    request.context["timestamp"] = params["X-Amz-Date"]
    signer = S3SigV4QueryAuth(Credentials(access_key, secret_key), "s3", region, expires=expires)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return hmac.compare_digest(expected, signature)


def header_signature_is_valid(
    method: str, host: str, raw_path: str, raw_query: str, headers: dict[str, str], body: bytes | None,
    access_key: str, secret_key: str, now: datetime | None = None,
) -> bool:
    """Whether a request carries a valid SigV4 `Authorization` header made with these credentials
    (what boto3 sends: the API, the job worker, the large-request service). S3 signs the body's
    hash in `X-Amz-Content-SHA256`, so its body is not needed; other services sign the body
    itself, passed as `body`."""
    lowered = {name.lower(): value for name, value in headers.items()}
    authorization = lowered.get("authorization", "")
    algorithm, _, fields = authorization.partition(" ")
    try:
        parts = dict(field.strip().split("=", 1) for field in fields.split(","))
        key_id, date, region, service, terminator = parts["Credential"].split("/")
        signed_headers = parts["SignedHeaders"].split(";")
        signature = parts["Signature"]
        timestamp = lowered["x-amz-date"]
        signed_at = datetime.strptime(timestamp, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return False
    now = now or datetime.now(UTC)
    if (algorithm != ALGORITHM or key_id != access_key or terminator != "aws4_request"
            or date != timestamp[:8] or abs(now - signed_at) > CLOCK_SKEW
            or "host" not in signed_headers or any(name not in lowered for name in signed_headers)):
        return False
    url = f"http://{host}{raw_path}" + (f"?{raw_query}" if raw_query else "")
    request = AWSRequest(method=method, url=url,
                         headers={name: lowered[name] for name in signed_headers}, data=body or b"")
    request.context["timestamp"] = timestamp
    signer_class = S3SigV4Auth if service == "s3" else SigV4Auth
    signer = signer_class(Credentials(access_key, secret_key), service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return hmac.compare_digest(expected, signature)


def signs_its_body(headers: dict[str, str]) -> bool:
    """Whether a header-signed request's signature covers its body itself (not S3's)."""
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    return authorization.startswith(ALGORITHM) and "/s3/aws4_request" not in authorization


def _request_headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").title()] = value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers[key.replace("_", "-").title()] = value
    return headers


def gate_application(upstream_host: str, upstream_port: int, access_key: str, secret_key: str):
    """A WSGI application that passes presigned requests on to moto and refuses the rest."""

    def application(environ: dict[str, Any], start_response) -> Iterator[bytes]:
        method = environ["REQUEST_METHOD"]
        target = environ.get("REQUEST_URI") or "/"
        raw_path, _, raw_query = target.partition("?")
        headers = _request_headers(environ)
        host = headers.get("Host", "")
        if not presigned_signature_is_valid(method, host, raw_path, raw_query, headers,
                                            access_key, secret_key):
            start_response("403 Forbidden", [("Content-Type", "application/xml"),
                                             ("Content-Length", str(len(DENIED)))])
            return iter([DENIED])
        return _forward(environ, method, target, headers, upstream_host, upstream_port, start_response)

    return application


def _forward(environ, method, target, headers, host, port, start_response) -> Iterator[bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=300)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    forwarded = {name: value for name, value in headers.items() if name.lower() not in HOP_BY_HOP}
    forwarded["Content-Length"] = str(length)
    connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    for name, value in forwarded.items():
        connection.putheader(name, value)
    connection.endheaders()
    body = environ["wsgi.input"]
    remaining = length
    while remaining > 0 and (chunk := body.read(min(STREAM_CHUNK, remaining))):
        connection.send(chunk)
        remaining -= len(chunk)
    response = connection.getresponse()
    reply_headers = [(name, value) for name, value in response.getheaders()
                     if name.lower() not in HOP_BY_HOP or name.lower() == "content-length"]
    start_response(f"{response.status} {response.reason}", reply_headers)

    def stream() -> Iterator[bytes]:
        try:
            while chunk := response.read(STREAM_CHUNK):
                yield chunk
        finally:
            connection.close()

    return stream()


def make_gate(listen_host: str, listen_port: int, upstream_port: int, access_key: str,
              secret_key: str) -> HttpServer:
    return HttpServer(gate_application("127.0.0.1", upstream_port, access_key, secret_key),
                      listen_host, listen_port)
