"""An API Gateway (REST API, Lambda proxy integration) in front of the Chalice app, locally.

It does what our deployed API Gateway does (infra/), so the app sees the same events here and in
AWS: resource matching with literal segments before `{params}` before a greedy `{param+}` (which
takes every remaining segment), the trailing slash ignored, path parameters left
percent-encoded, query values decoded, binary media types base64-encoded, a JSON Content-Type
added to proxy responses that have none, and the gateway response for unknown routes (404 JSON
`object_not_found`).

It keeps AWS's limits, always (chalicelib/http/limits.py), and answers as the deployed gateway
responses do: a body above 10 MB, or an event above what a Lambda invocation carries (the
body base64-encoded in it), is a 413 before the function runs; an answer larger than a Lambda
answer may be is a 502; a function that has not answered after 29 s is a 504 while it goes on.
Larger file uploads never come here: the edge sends them to the large-request service
(devstack/edge.py).

A body comes as bytes or as a file to read (a server that spooled a body to disk). A binary
body is put in the event base64-encoded as API Gateway does, as ASCII bytes rather than a str:
the same characters, without another in-memory copy.
"""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FunctionStillRunning
from dataclasses import dataclass, field
from fnmatch import fnmatch
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from chalicelib.errors import ApiError, BadGateway, GatewayTimeout, MethodNotAllowed, UnknownRoute, error_json
from chalicelib.http import limits

# What API Gateway sets on a Lambda proxy response that names no Content-Type.
DEFAULT_CONTENT_TYPE = "application/json"


@dataclass
class Resource:
    path: str | None = None
    literals: dict[str, Resource] = field(default_factory=dict)
    param: tuple[str, Resource] | None = None
    greedy: tuple[str, str] | None = None  # (parameter name, route) of a `{name+}` child


def _build_tree(route_paths) -> Resource:
    root = Resource()
    for route in route_paths:
        node = root
        for segment in route.strip("/").split("/"):
            if segment.startswith("{") and segment.endswith("+}"):
                node.greedy = (segment[1:-2], route)
                break
            if segment.startswith("{") and segment.endswith("}"):
                if node.param is None:
                    node.param = (segment[1:-1], Resource())
                node = node.param[1]
            else:
                node = node.literals.setdefault(segment, Resource())
        else:
            node.path = route
    return root


def _match_segments(node: Resource, segments: list[str]) -> tuple[str, dict[str, str]] | None:
    """The route for `segments` below `node`: a literal segment wins over a parameter, which wins
    over a greedy parameter."""
    if not segments:
        return (node.path, {}) if node.path else None
    head, rest = segments[0], segments[1:]
    if head in node.literals:
        return _match_segments(node.literals[head], rest)
    if node.param is not None and head:
        name, child = node.param
        if found := _match_segments(child, rest):
            return found[0], {name: head, **found[1]}
    if node.greedy is not None:
        name, route = node.greedy
        return route, {name: "/".join(segments)}
    return None


@dataclass
class GatewayResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class ApiGateway:
    """Serves `handler` (the Lambda entry point) with the routes and binary types of `app`."""

    def __init__(self, app, handler, stage: str = "local", domain_name: str | None = None,
                 timeout_seconds: float = limits.INTEGRATION_TIMEOUT_SECONDS):
        self.app = app
        self.handler = handler
        self.stage = stage
        self.domain_name = domain_name  # what API Gateway reports as `requestContext.domainName`
        self.timeout_seconds = timeout_seconds
        self.tree = _build_tree(app.routes)
        # The function runs on a thread of its own, so that the gateway can answer 504 after its
        # timeout while the function goes on (as on AWS); as many as the HTTP server's threads,
        # and room for some that outlast their timeout.
        self._functions = ThreadPoolExecutor(max_workers=64, thread_name_prefix="function")

    def _match(self, path: str) -> tuple[str, dict[str, str]] | None:
        if path != "/" and path.endswith("/"):
            path = path[:-1]
        return _match_segments(self.tree, path.strip("/").split("/"))

    def _is_binary(self, content_type: str) -> bool:
        media_type = content_type.split(";")[0].strip().lower()
        return bool(media_type) and any(
            fnmatch(media_type, pattern) for pattern in limits.BINARY_MEDIA_TYPES
        )

    def handle(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | IO[bytes],
        source_ip: str = "127.0.0.1",
    ) -> GatewayResponse:
        split = urlsplit(target)
        matched = self._match(split.path)
        if matched is None:
            return GatewayResponse(
                404, [("Content-Type", "application/json")], error_json(UnknownRoute()).encode()
            )
        resource, params = matched
        methods = self.app.routes[resource]
        if method not in methods:  # TRACE, CONNECT, WebDAV's: API Gateway routes none of them
            served = sorted(m for m, entry in methods.items() if entry.view_name != "method_not_allowed")
            allowed = MethodNotAllowed(headers={"Allow": ", ".join(served)})
            return GatewayResponse(405, [("Content-Type", "application/json"), *allowed.headers.items()],
                                   error_json(allowed).encode())
        if _length(body) > limits.API_GATEWAY_REQUEST_BYTES:
            return _error(limits.too_large())
        event = self._event(method, split, headers, body, resource, params, source_ip)
        if _event_bytes(event) > limits.LAMBDA_EVENT_BYTES:
            return _error(limits.too_large())
        running = self._functions.submit(self.handler, event, _LambdaContext())
        try:
            result = running.result(timeout=self.timeout_seconds)
        except FunctionStillRunning:
            return _error(GatewayTimeout())
        if _answer_bytes(result) > limits.LAMBDA_ANSWER_BYTES:
            return _error(BadGateway())
        return self._response(result)

    def _event(self, method, split, headers, body, resource, params, source_ip) -> dict[str, Any]:
        multi_headers: dict[str, list[str]] = {}
        for name, value in headers:
            multi_headers.setdefault(name, []).append(value)
        query = parse_qs(split.query, keep_blank_values=True)
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        event_body, base64_encoded = _event_body(body.read() if hasattr(body, "read") else body,
                                                 self._is_binary(content_type))
        return {
            "resource": resource,
            "path": split.path,
            "httpMethod": method,
            "headers": {name: values[-1] for name, values in multi_headers.items()},
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": resource,
                "httpMethod": method,
                "path": split.path,
                "stage": self.stage,
                "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(time.time() * 1000),
                "identity": {"sourceIp": source_ip},
                **({"domainName": self.domain_name} if self.domain_name else {}),
            },
            "body": event_body,
            "isBase64Encoded": base64_encoded,
        }

    @staticmethod
    def _response(result: dict[str, Any]) -> GatewayResponse:
        headers: list[tuple[str, str]] = []
        multi = result.get("multiValueHeaders") or {}
        for name, values in multi.items():
            headers.extend((name, str(value)) for value in values)
        for name, value in (result.get("headers") or {}).items():
            if name not in multi:
                headers.append((name, str(value)))
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", DEFAULT_CONTENT_TYPE))  # as API Gateway does
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
        return GatewayResponse(int(result["statusCode"]), headers, raw)


def _event_body(body: bytes, binary: bool) -> tuple[bytes | str | None, bool]:
    """The event's `body` and `isBase64Encoded`."""
    if not body:
        return None, False
    if not binary:
        return body.decode("utf-8", "replace"), False
    return base64.b64encode(body), True


def _length(body: bytes | IO[bytes]) -> int:
    if isinstance(body, bytes | bytearray):
        return len(body)
    here = body.tell()
    end = body.seek(0, io.SEEK_END)
    body.seek(here)
    return end - here


def _event_bytes(event: dict[str, Any]) -> int:
    """The size of the event as Lambda receives it (JSON), counted without another copy of the body."""
    body = event["body"]
    rest = json.dumps({**event, "body": None}, separators=(",", ":"))
    if body is None:
        return len(rest)
    if isinstance(body, str):
        return len(rest) + len(json.dumps(body)) - len("null")
    return len(rest) + len(body) + 2 - len("null")  # base64 is plain ASCII: only the quotes added


def _answer_bytes(result: dict[str, Any]) -> int:
    """The size of the function's answer as Lambda passes it on (JSON)."""
    return len(json.dumps(result, separators=(",", ":")))


def _error(error: ApiError) -> GatewayResponse:
    """A gateway response (infra/api.py declares the same ones for API Gateway)."""
    return GatewayResponse(error.status, [("Content-Type", "application/json"), *error.headers.items()],
                           error_json(error).encode())


class _LambdaContext:
    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = "qfc-api-local"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = "arn:aws:lambda:local:000000000000:function:qfc-api-local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
