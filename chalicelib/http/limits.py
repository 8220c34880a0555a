"""AWS's limits on a request and an answer of the API, and the one route that goes around them.

One home for the numbers that infra/ deploys against, the local stack enforces (devstack/) and
the app shapes its answers to (docs/api.md, "Limits"):

- API Gateway (REST API) takes a request body of at most 10 MB and answers 413 above it.
- A synchronous Lambda invocation carries an event of at most 6,291,456 bytes, a binary body
  base64-encoded in it (4/3 larger), and an answer of at most 100 bytes more; API Gateway answers
  413 for a request too large for the function and 502 for an answer too large from it.
- API Gateway waits 29 s for the function, then answers 504 (the function goes on).

Bodies too large for that path never reach API Gateway: on AWS a CloudFront Function sends them
to the large-request service (infra/edge.py), locally the CloudFront stand-in does the same
(devstack/edge.py), both by `takes_large_path`. Only file uploads do: every other request has
exactly AWS's limits.
"""

from __future__ import annotations

import re

from chalicelib.errors import PayloadTooLarge

API_GATEWAY_REQUEST_BYTES = 10 * 1024 * 1024
LAMBDA_EVENT_BYTES = 6 * 1024 * 1024
LAMBDA_ANSWER_BYTES = LAMBDA_EVENT_BYTES + 100
INTEGRATION_TIMEOUT_SECONDS = 29
# What API Gateway treats as binary: every type, since it decides by the client's first Accept
# value, and a compressed JSON answer (chalicelib/http/compression.py) must reach a client that
# sends `Accept: */*` (the SDK) or no Accept at all as bytes. Request bodies of every type then
# reach the function base64-encoded, which Chalice decodes.
BINARY_MEDIA_TYPES = ("*/*",)

# The largest upload body sent through API Gateway to the function: base64-encoded (4/3), it
# leaves some 420 KB of the event for the headers (at most 10 KB, and they appear twice), the
# request context and the path. Larger upload bodies, and those of unknown length (chunked),
# take the large-request path.
LARGE_BODY_BYTES = 4_400_000
# The direct upload's own limit in the function, on the file's bytes (a multipart body has a
# few hundred more): whatever the edge sends the function fits.
MAX_DIRECT_UPLOAD_BYTES = LARGE_BODY_BYTES
# `POST /api/v1/files/<project>/<path>/`: the one route QField, QFieldSync and the SDK upload
# files with (not `files/metadata/` nor `files/thumbnails/`, which are other routes).
LARGE_UPLOAD_PATH = r"^/api/v1/files/(?!metadata/|thumbnails/)[^/]+/.+"
LARGE_UPLOAD_METHOD = "POST"

TOO_LARGE_MESSAGE = (
    "The request is larger than API Gateway accepts. A file is uploaded in one multipart POST to "
    "files/<project>/<path>/ whatever its size; other requests take at most 6 MB (4.4 MB of binary "
    "content, such as a deltafile: push the changes in several)."
)

_LARGE_UPLOAD_PATH = re.compile(LARGE_UPLOAD_PATH)


def takes_large_path(method: str, path: str, content_length: str | None, chunked: bool) -> bool:
    """Whether a request goes to the large-request service rather than API Gateway: a file
    upload whose body is larger than the function takes, or of unknown length. `path` is the
    path as the client sent it (percent-encoded), `content_length` the header's value."""
    if method != LARGE_UPLOAD_METHOD or not _LARGE_UPLOAD_PATH.match(path):
        return False
    if chunked or content_length is None:
        return True
    try:
        return int(content_length) > LARGE_BODY_BYTES
    except ValueError:
        return False


def too_large() -> PayloadTooLarge:
    """API Gateway's 413 for a request too large for it or for the function (a gateway response
    of the template, answered by the local stand-in the same way)."""
    return PayloadTooLarge(TOO_LARGE_MESSAGE)
