"""An HTTP client for tests that goes through the same API Gateway emulation as the local stack,
in process. Requests are encoded by `requests`, exactly as the SDK encodes them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.structures import CaseInsensitiveDict

BASE = "http://testserver/api/v1/"


@dataclass
class Reply:
    status: int
    headers: CaseInsensitiveDict
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def code(self) -> str | None:
        try:
            body = self.json()
        except ValueError:
            return None
        return body.get("code") if isinstance(body, dict) else None


def assert_json_is_labelled(reply: Reply) -> None:
    """Every JSON answer says so in its Content-Type, as behind API Gateway (checked on every
    request the suite makes)."""
    try:
        json.loads(reply.content)
    except ValueError:
        return
    content_type = reply.headers.get("Content-Type", "")
    assert content_type.startswith("application/json"), (reply.status, content_type, reply.content[:200])


class ApiClient:
    def __init__(self, gateway, token: str | None = None, user_agent: str = "sdk|py|tests",
                 source_ip: str = "127.0.0.1", front=None):
        self.gateway = gateway
        # What requests go through: the edge (devstack.edge.Edge: large uploads to the
        # large-request service, the rest to the gateway), or the gateway itself.
        self.front = front or gateway
        self.token = token
        self.user_agent = user_agent
        self.source_ip = source_ip  # the client's address, as API Gateway reports it
        self.username: str | None = None

    def as_anonymous(self) -> ApiClient:
        return ApiClient(self.gateway, None, self.user_agent, self.source_ip, self.front)

    def with_token(self, token: str | None) -> ApiClient:
        return ApiClient(self.gateway, token, self.user_agent, self.source_ip, self.front)

    def from_address(self, source_ip: str) -> ApiClient:
        return ApiClient(self.gateway, self.token, self.user_agent, source_ip, self.front)

    def login(self, username: str, password: str) -> ApiClient:
        reply = self.as_anonymous().post("auth/login/", data={"username": username, "password": password})
        assert reply.status == 200, reply.content
        client = self.with_token(reply.json()["token"])
        client.username = username
        return client

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                raw_body: bytes | None = None, **kwargs: Any) -> Reply:
        url = path if path.startswith("http") else BASE + path.lstrip("/")
        all_headers = {"User-Agent": self.user_agent, "Host": "testserver"}
        if self.token:
            all_headers["Authorization"] = f"Token {self.token}"
        all_headers.update(headers or {})
        prepared = requests.Request(method, url, headers=all_headers, **kwargs).prepare()
        body = raw_body if raw_body is not None else prepared.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if raw_body is not None:  # as an HTTP client announces the body it sends
            prepared.headers["Content-Length"] = str(len(body))
        split = urlsplit(prepared.url)
        target = split.path + (f"?{split.query}" if split.query else "")
        response = self.front.handle(method, target, list(prepared.headers.items()), body,
                                       self.source_ip)
        reply = Reply(response.status, CaseInsensitiveDict(response.headers), response.body)
        assert_json_is_labelled(reply)
        return reply

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Reply:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Reply:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Reply:
        return self.request("DELETE", path, **kwargs)

    def create_project(self, name: str, **fields: Any) -> dict[str, Any]:
        reply = self.post("projects/", json={"name": name, **fields})
        assert reply.status == 201, reply.content
        return reply.json()
