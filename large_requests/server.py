"""The service's HTTP server: the standard library's threading server, reading each body as it
arrives (by its Content-Length, or chunked) and handing it to `handler.handle`.

A thread serves each connection (the service takes a handful of uploads at once); a client
that stops sending for `IDLE_SECONDS` is dropped, and its upload with it. `GET /health` answers
the load balancer's health check. Every answer, errors included, is the API's JSON.
"""

from __future__ import annotations

import os
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from chalicelib.errors import BadRequest, error_json
from chalicelib.observability import count_request, publish_metrics

from . import handler

HEALTH_PATH = "/health"
IDLE_SECONDS = 120
_metrics = threading.Lock()


class Body:
    """A request body read as it arrives: `length` bytes, or chunks until the last one. A body
    that ends early or stops arriving is a 400 (the client is gone: nothing is stored)."""

    def __init__(self, stream, length: int | None, chunked: bool) -> None:
        self._stream = stream
        self._left = 0 if chunked else (length or 0)
        self._chunked = chunked
        self.finished = not chunked and not length

    def read(self, size: int) -> bytes:
        try:
            if self._chunked:
                return self._read_chunked(size)
            return self._read_plain(size)
        except TimeoutError:
            raise BadRequest(f"The body stopped arriving for {IDLE_SECONDS} s.") from None

    def _read_plain(self, size: int) -> bytes:
        if self._left == 0:
            self.finished = True
            return b""
        data = self._stream.read1(min(size, self._left)) if hasattr(self._stream, "read1") \
            else self._stream.read(min(size, self._left))
        if not data:
            raise BadRequest("The body ended before the length its Content-Length announced.")
        self._left -= len(data)
        return data

    def _read_chunked(self, size: int) -> bytes:
        if self.finished:
            return b""
        if self._left == 0:
            line = self._stream.readline(1024)
            try:
                self._left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest("The chunked body is malformed.") from None
            if self._left == 0:  # the last chunk; then trailers, up to an empty line
                while self._stream.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass
                self.finished = True
                return b""
        data = self._stream.read1(min(size, self._left))
        if not data:
            raise BadRequest("The chunked body ended before its last chunk.")
        self._left -= len(data)
        if self._left == 0 and self._stream.readline(8) not in (b"\r\n", b"\n"):
            raise BadRequest("The chunked body is malformed.")
        return data


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "qfc-large-requests"
    timeout = IDLE_SECONDS
    quiet = False

    def do_GET(self) -> None:  # noqa: N802 (the standard library's names)
        if self.path == HEALTH_PATH:
            self._send(handler.Answer(200, b'{"status": "ok"}', [("Content-Type", "application/json")]))
            return
        self._serve_request()

    def _serve_request(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        try:
            length = None if chunked else int(headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if length is not None and length < 0:
            refused = error_json(BadRequest("The Content-Length is not valid.")).encode()
            self._send(handler.Answer(400, refused, [("Content-Type", "application/json")]))
            self.close_connection = True
            return
        body = Body(self.rfile, length, chunked)
        answer = handler.handle(self.command, self.path, headers, body.read, length)
        with _metrics:  # one request's metrics at a time (powertools keeps them in one place)
            count_request(f"{self.command} {handler.ROUTE}", answer.status)
            publish_metrics()
        if not body.finished:
            self.close_connection = True  # what is left of the body cannot be told from a next request
        self._send(answer)

    def _send(self, answer: handler.Answer) -> None:
        try:
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)
        except OSError:
            self.close_connection = True  # the client is gone

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The server's own refusals (a malformed request line, headers too long), as JSON."""
        error = BadRequest(f"{message or HTTPStatus(code).phrase} (the HTTP request could not be read).")
        self.close_connection = True
        self._send(handler.Answer(code, error_json(error).encode(), [("Content-Type", "application/json")]))

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the standard library's name)
        if not self.quiet:
            sys.stderr.write(f"large-requests: {self.address_string()} {format % args}\n")


# Every other method is the upload route's business (it answers 405 or 404 as the API does).
for _method in ("POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
    setattr(_Handler, f"do_{_method}", _Handler._serve_request)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def make_server(host: str, port: int, quiet: bool = False) -> Server:
    handler_class = type("Handler", (_Handler,), {"quiet": quiet})
    return Server((host, port), handler_class)


def main() -> int:
    host = os.environ.get("QFC_LARGE_REQUESTS_HOST", "0.0.0.0")
    port = int(os.environ.get("QFC_LARGE_REQUESTS_PORT", "8080"))
    server = make_server(host, port, quiet=os.environ.get("QFC_QUIET") == "1")
    print(f"large-requests: serving on {host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
