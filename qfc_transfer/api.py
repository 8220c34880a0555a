"""A thin client for the few API endpoints the transfers need."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import quote, urljoin

import requests

from .errors import ApiError, TransferError

TIMEOUT = (10, 120)  # (connect, read) seconds
USER_AGENT = "qfc-transfer"

_local = threading.local()


def http() -> requests.Session:
    """A Session of this thread's own: Sessions are not documented as thread-safe."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
    return session


def file_path(prefix: str, project_id: str, name: str) -> str:
    """`prefix/<project>/<name>/` with each segment of the name percent-encoded, "/" kept."""
    return f"{prefix}/{quote(project_id, safe='')}/{quote(name, safe='/')}/"


class Api:
    def __init__(self, base_url: str, token: str) -> None:
        # Paths are joined to the base, which only works when it ends with a slash.
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.token = token

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path)

    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None,
             allow_redirects: bool = True, timeout: tuple[float, float] = TIMEOUT) -> requests.Response:
        """One API request; an error answer becomes an ApiError with the API's code and message."""
        url = self.url(path)
        try:
            response = http().request(
                method, url, json=json, params=params, allow_redirects=allow_redirects,
                headers={"Authorization": f"Token {self.token}"}, timeout=timeout,
            )
        except requests.RequestException as error:
            raise TransferError("connection_error", f"{method} {url} failed: {error}") from error
        if response.status_code >= 400:
            raise _api_error(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as error:
            raise TransferError(
                "bad_response", f"{method} {response.url} answered {response.status_code} without JSON"
            ) from error


def _api_error(response: requests.Response) -> ApiError:
    try:
        body = response.json()
        return ApiError(response.status_code, str(body["code"]), str(body.get("message", "")))
    except (ValueError, KeyError, TypeError):
        # Not the API's JSON error: a proxy, a wrong base URL, a crash page.
        text = " ".join(response.text.split())[:200]
        return ApiError(response.status_code, f"http_{response.status_code}",
                        f"{response.request.method} {response.url}: {text or response.reason}")
