"""The local stack's HTTP server: waitress, a well-kept WSGI server, in front of the emulated
API Gateway (`devstack.gateway`).

waitress parses HTTP/1.1 (keep-alive, chunked bodies, pipelining), queues connections with a
real listen backlog, serves requests from a pool of threads and buffers large bodies on disk
while they arrive. What it refuses itself (a malformed request line or chunked body, a
negative Content-Length, headers beyond its limit) is answered here with the API's JSON error
body instead of waitress's text page, like every other error.
"""

from __future__ import annotations

import io
import json
import sys
from http import HTTPStatus
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask

from chalicelib.errors import ApiError, BadRequest, HeaderFieldsTooLarge, PayloadTooLarge, error_json

from .gateway import ApiGateway

# Connection-level headers are the HTTP server's business, never the application's.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer",
              "upgrade", "proxy-connection"}
THREADS = 16
BACKLOG = 1024
MAX_HEADER_BYTES = 256 * 1024
MAX_BODY_BYTES = 8 * 1024**3
# Request bodies above this are spooled to a temporary file while they arrive, not held in
# memory; response bodies above it are sent from the app's buffer.
IN_MEMORY_BODY_BYTES = 1024 * 1024
RECV_BYTES = 256 * 1024
MAX_ERROR_BODY_BYTES = 64 * 1024
ERRORS_BY_STATUS: dict[int, type[ApiError]] = {413: PayloadTooLarge, 431: HeaderFieldsTooLarge}


def _api_error_for(status: int, reason: str) -> ApiError:
    error = ERRORS_BY_STATUS.get(status, BadRequest)
    return error(f"{reason} (the HTTP request could not be read).")


class _JsonErrorTask(ErrorTask):
    """waitress's answer to a request it could not parse, in the API's error format."""

    def execute(self) -> None:
        refused = self.request.error
        error = _api_error_for(refused.code, refused.reason)
        body = error_json(error).encode()
        self.status = f"{refused.code} {refused.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _JsonErrorChannel(HTTPChannel):
    error_task_class = _JsonErrorTask


class _Server(TcpWSGIServer):
    channel_class = _JsonErrorChannel


def _headers_of(environ: dict[str, Any]) -> list[tuple[str, str]]:
    headers = [("Content-Type", environ["CONTENT_TYPE"])] if environ.get("CONTENT_TYPE") else []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").title()
            if name.lower() not in HOP_BY_HOP:
                headers.append((name, value))
    return headers


def _target_of(environ: dict[str, Any]) -> str:
    """The request target exactly as sent (percent-encoding kept: the gateway decodes once)."""
    target = environ.get("REQUEST_URI") or "/"
    if "://" in target.split("?", 1)[0]:  # absolute-form: keep the path and query
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    return target


def _error_code(response) -> str:
    """An error's code, to follow its status on the console line of the request."""
    if response.status < 400 or len(response.body) > MAX_ERROR_BODY_BYTES:
        return ""
    try:
        return f" {json.loads(response.body)['code']}"
    except (ValueError, TypeError, KeyError):
        return ""


def wsgi_application(gateway: ApiGateway, quiet: bool = False):
    def application(environ: dict[str, Any], start_response):
        method = environ["REQUEST_METHOD"]
        target = _target_of(environ)
        body = environ["wsgi.input"].read()
        response = gateway.handle(method, target, _headers_of(environ), body,
                                  environ.get("REMOTE_ADDR", ""))
        headers = [(name, value) for name, value in response.headers if name.lower() not in HOP_BY_HOP]
        payload = b"" if method == "HEAD" or response.status in (204, 304) else response.body
        headers.append(("Content-Length", str(len(payload))))
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        start_response(f"{response.status} {reason}", headers)
        if not quiet:
            sys.stderr.write(f"api: {environ.get('REMOTE_ADDR')} {method} {target} {response.status}"
                             f"{_error_code(response)}\n")
        if len(payload) > IN_MEMORY_BODY_BYTES:
            # Sent from where it is: handed over as bytes, a body above `outbuf_overflow` is first
            # written to a temporary file and read back (a whole list of 10,000 files).
            return environ["wsgi.file_wrapper"](io.BytesIO(payload), RECV_BYTES)
        return [payload]

    return application


class HttpServer:
    """A running waitress server: `serve_forever()` in a thread, `shutdown()` from another."""

    def __init__(self, application, host: str, port: int):
        adjustments = Adjustments(
            host=host, port=port, threads=THREADS, backlog=BACKLOG, connection_limit=1000,
            max_request_header_size=MAX_HEADER_BYTES, max_request_body_size=MAX_BODY_BYTES,
            inbuf_overflow=IN_MEMORY_BODY_BYTES, outbuf_overflow=IN_MEMORY_BODY_BYTES,
            expose_tracebacks=False, ident="qfc-local",
            asyncore_use_poll=True, channel_timeout=120, recv_bytes=RECV_BYTES,
        )
        self._server = _Server(application, adj=adjustments)

    @property
    def server_address(self) -> tuple[str, int]:
        return self._server.effective_host, self._server.effective_port

    def serve_forever(self) -> None:
        self._server.run()

    def shutdown(self) -> None:
        """Stop accepting, close every connection and the worker threads; `serve_forever` returns."""
        for channel in list(self._server._map.values()):
            channel.close()
        self._server.task_dispatcher.shutdown()

    def server_close(self) -> None:
        self._server.close()


def make_server(gateway: ApiGateway, host: str, port: int, quiet: bool = False) -> HttpServer:
    return HttpServer(wsgi_application(gateway, quiet), host, port)
