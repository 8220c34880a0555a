"""What the service does with one request: the direct upload's route, its body streamed.

The request is answered as the API answers the same upload (http/handlers/files.py): 201 with
the new version and its `Location`, or the same JSON error. The caller, the project and the
file's rules are checked before a byte of the body is read; then the multipart body is read as
it arrives and its `file` part stored as it comes. Whatever stops the upload on the way (a
refused body, a client gone mid-body, an error of S3) leaves nothing stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from chalicelib.errors import ApiError, MethodNotAllowed, UnknownRoute, as_api_error, error_json
from chalicelib.http import limits
from chalicelib.http.request_data import stream_multipart
from chalicelib.http.routing import API_PREFIX, decode_params, resolve_caller
from chalicelib.http.serializers import uploaded_json
from chalicelib.models.shapes import compact_json
from chalicelib.observability import logger
from chalicelib.rules.permissions import Action
from chalicelib.services import files, projects, streamed_uploads

# The upload route's parameters, in a path the edge sent here (`limits.LARGE_UPLOAD_PATH`).
UPLOAD_ROUTE = re.compile(rf"^{API_PREFIX}/files/(?P<project_id>[^/]+)/(?P<filename>.+)$")
# The route as the API's logs and metrics name it (API Gateway's resource path).
ROUTE = f"{API_PREFIX}/files/{{project_id}}/{{filename+}}"


@dataclass
class Answer:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Answer:
    return Answer(status, text.encode(), [("Content-Type", "application/json"), *(headers or [])])


def _error(error: ApiError) -> Answer:
    return _json(error.status, error_json(error), list(error.headers.items()))


def handle(method: str, target: str, headers: Mapping[str, str], read: Callable[[int], bytes],
           body_bytes: int | None) -> Answer:
    """Answer one request. `headers` has lower-case names; `read(n)` gives the body as it arrives
    (at most n bytes, b"" at its end); `body_bytes` is its length when the client said it."""
    path = urlsplit(target).path
    match = UPLOAD_ROUTE.match(path) if re.match(limits.LARGE_UPLOAD_PATH, path) else None
    if match is None:
        return _error(UnknownRoute())
    if method != limits.LARGE_UPLOAD_METHOD:
        return _error(MethodNotAllowed(headers={"Allow": limits.LARGE_UPLOAD_METHOD}))
    logger.append_keys(method=method, route=ROUTE)
    try:
        return _upload(match["project_id"], match["filename"], headers, read, body_bytes)
    except Exception as exc:  # as the API's router answers (http/routing.py)
        error = as_api_error(exc)
        if error is exc or error.status < 500:
            logger.info("Request refused", extra={"status": error.status, "code": error.code})
        else:
            logger.exception("Unexpected error while serving the request")
        return _error(error)


def _upload(project_id: str, filename: str, headers: Mapping[str, str], read: Callable[[int], bytes],
            body_bytes: int | None) -> Answer:
    params = decode_params({"project_id": project_id, "filename": filename})
    caller = resolve_caller(headers, "token")
    # Reporters may upload attachments, so that is the least a caller needs to go on.
    project, role = projects.project_for(caller, params["project_id"], Action.UPLOAD_ATTACHMENT)
    target = files.check_upload(project, role, params["filename"])
    upload = streamed_uploads.begin(caller, target, body_bytes)
    try:
        stream_multipart(headers.get("content-type", ""), read, upload.write)
        version = upload.finish()
    except BaseException:
        upload.abort()
        raise
    location = f"{API_PREFIX}/files/{params['project_id']}/{quote(params['filename'])}/"
    return _json(201, compact_json(uploaded_json(params["filename"], version)), [("Location", location)])
