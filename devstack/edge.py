"""The CloudFront stand-in: the local stack's one public address, in front of its two origins.

On AWS, CloudFront is the one public URL (infra/edge.py): its function sends file uploads too
large for API Gateway and Lambda to the large-request service and everything else to API
Gateway. Here the same rule (`limits.takes_large_path`, which the deployed function is
generated from) sends each request to the API Gateway stand-in (devstack/gateway.py behind
devstack/http_server.py, on a loopback port of its own) or to the large-request service (a
process, `python -m large_requests`, on another). Bodies are passed on as they arrive, answers
as they come back: nothing is held whole, so a large upload's memory stays flat here too.

As CloudFront does, it tells the API who the viewer is (chalicelib/http/client_address.py): every
request it passes on carries the viewer's address in `X-Qfc-Viewer-Address`, and those to the
API the stack's edge secret in `X-Qfc-Edge-Secret`, whatever the viewer sent under those names.
The gateway sees the edge's own loopback address as `sourceIp`, as API Gateway sees CloudFront's.

`Edge` is the same routing in process, for the tests: a request goes to the gateway object or to
the service's handler without a socket.
"""

from __future__ import annotations

import http.client
import io
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO
from urllib.parse import urlsplit

from chalicelib.errors import ApiError, BadRequest, ServiceUnavailable, error_json
from chalicelib.http import limits
from chalicelib.http.client_address import EDGE_SECRET_HEADER, VIEWER_ADDRESS_HEADER
from large_requests import handler as large_requests
from large_requests.server import Body

from .gateway import ApiGateway, GatewayResponse

# Connection-level headers are each hop's own (RFC 9110, 7.6.1); Expect is answered here.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-connection", "proxy-authenticate", "proxy-authorization", "expect"}
COPY_BYTES = 1024 * 1024
ORIGIN_TIMEOUT_SECONDS = 600
IDLE_SECONDS = 120
STARTING = ("The large-upload service is not running yet (it starts with the stack, and again "
            "if it stopped); retry in a minute.")
# The edge's own address, which the gateway sees as `sourceIp` (in process; the stack's edge
# reaches the gateway's server on loopback, and so is this address there too).
EDGE_ADDRESS = "127.0.0.1"
EDGE_OWN_HEADERS = {VIEWER_ADDRESS_HEADER.lower(), EDGE_SECRET_HEADER.lower()}


def is_large(method: str, target: str, headers: list[tuple[str, str]]) -> bool:
    lowered = {name.lower(): value for name, value in headers}
    return limits.takes_large_path(method, urlsplit(target).path, lowered.get("content-length"),
                                   "chunked" in lowered.get("transfer-encoding", "").lower())


def with_viewer(headers: list[tuple[str, str]], viewer_ip: str,
                edge_secret: str | None) -> list[tuple[str, str]]:
    """`headers` as the edge passes them on: the viewer's address, and the edge secret when
    given (to the API only), in place of whatever the viewer sent under those names."""
    passed = [(name, value) for name, value in headers if name.lower() not in EDGE_OWN_HEADERS]
    passed.append((VIEWER_ADDRESS_HEADER, viewer_ip))
    if edge_secret:
        passed.append((EDGE_SECRET_HEADER, edge_secret))
    return passed


class Edge:
    """The edge in process: `handle` takes a request as `ApiGateway.handle` does, `source_ip`
    being the viewer's address."""

    def __init__(self, gateway: ApiGateway, edge_secret: str | None) -> None:
        self.gateway = gateway
        self.edge_secret = edge_secret  # the API's `settings.edge_secret`

    def handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes | IO[bytes],
               source_ip: str = "127.0.0.1") -> GatewayResponse:
        if not is_large(method, target, headers):
            return self.gateway.handle(method, target, with_viewer(headers, source_ip, self.edge_secret),
                                       body, EDGE_ADDRESS)
        stream = io.BytesIO(body) if isinstance(body, bytes | bytearray) else body
        length = len(body) if isinstance(body, bytes | bytearray) else None
        passed = with_viewer(headers, source_ip, None)
        answer = large_requests.handle(method, target, {name.lower(): value for name, value in passed},
                                       stream.read, length)
        return GatewayResponse(answer.status, answer.headers, answer.body)


def _json_error(error: ApiError) -> tuple[int, list[tuple[str, str]], bytes]:
    return error.status, [("Content-Type", "application/json")], error_json(error).encode()


class _EdgeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "qfc-edge"
    timeout = IDLE_SECONDS
    origins: Callable[[bool], tuple[str, int]]
    edge_secret: str | None = None
    quiet = False

    def setup(self) -> None:
        super().setup()
        self._connections: dict[tuple[str, int], http.client.HTTPConnection] = {}

    def finish(self) -> None:
        for connection in self._connections.values():
            connection.close()
        super().finish()

    def _serve(self) -> None:
        headers = list(self.headers.items())
        large = is_large(self.command, self.path, headers)
        forwarded = with_viewer(headers, self.client_address[0], None if large else self.edge_secret)
        lowered = {name.lower(): value for name, value in headers}
        chunked = "chunked" in lowered.get("transfer-encoding", "").lower()
        try:
            length = None if chunked else int(lowered.get("content-length") or 0)
            if length is not None and length < 0:
                raise ValueError
        except ValueError:
            self._answer(*_json_error(BadRequest("The Content-Length is not valid.")))
            self.close_connection = True
            return
        body = Body(self.rfile, length, chunked)
        origin = self.origins(large)
        try:
            try:
                response = self._forward(origin, forwarded, body, length)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if length != 0:
                    raise
                # A kept-alive connection the origin closed meanwhile: a bodiless request is
                # sent again on a new one.
                self._connections.pop(origin).close()
                response = self._forward(origin, forwarded, body, length)
        except ApiError as refused:  # the body could not be read
            self.close_connection = True
            self._answer(*_json_error(refused))
            return
        except OSError:
            self._connections.pop(origin, None)
            self.close_connection = True
            error = ServiceUnavailable(STARTING) if large else ServiceUnavailable()
            self._answer(*_json_error(error))
            return
        if not body.finished:
            self.close_connection = True
        self._relay(response)
        if not self.quiet:
            sys.stderr.write(f"edge: {self.client_address[0]} {self.command} {self.path} {response.status}"
                             f"{' (large-request service)' if large else ''}\n")

    def _forward(self, origin: tuple[str, int], headers: list[tuple[str, str]], body: Body,
                 length: int | None) -> http.client.HTTPResponse:
        connection = self._connections.get(origin)
        if connection is None:
            connection = http.client.HTTPConnection(*origin, timeout=ORIGIN_TIMEOUT_SECONDS)
            self._connections[origin] = connection
        connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                connection.putheader(name, value)
        connection.putheader("X-Forwarded-For", self.client_address[0])
        if length is None:
            connection.putheader("Transfer-Encoding", "chunked")
        else:
            connection.putheader("Content-Length", str(length))
        connection.endheaders()
        while data := body.read(COPY_BYTES):
            connection.send(b"%x\r\n%b\r\n" % (len(data), data) if length is None else data)
        if length is None:
            connection.send(b"0\r\n\r\n")
        return connection.getresponse()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        try:
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            if response.will_close or self.close_connection:
                self.close_connection = True
                self.send_header("Connection", "close")
            self.end_headers()
            while data := response.read(COPY_BYTES):
                self.wfile.write(data)
        except OSError:
            self.close_connection = True
        finally:
            response.close()

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The edge's own refusals (a malformed request line, headers too long), as JSON."""
        error = BadRequest(f"{message or HTTPStatus(code).phrase} (the HTTP request could not be read).")
        self.close_connection = True
        self._answer(code, [("Content-Type", "application/json")], error_json(error).encode())

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the standard library's name)
        pass  # requests are printed by _serve, and by the origins

    def __getattr__(self, name: str):
        # Every method goes to an origin, which answers it in the API's JSON (the gateway's 405
        # with the route's Allow, or its 404), as before the edge was there; the standard
        # library would answer an unknown one (QUERY, PROPFIND) 501 itself.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)




class EdgeServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True


def make_edge(host: str, port: int, api: tuple[str, int], uploads: tuple[str, int],
              edge_secret: str | None, quiet: bool = False) -> EdgeServer:
    """The edge on `host:port`, in front of the gateway's server at `api` and the large-request
    service at `uploads`, adding `edge_secret` (the API's `settings.edge_secret`) to what it
    passes on to the API; `serve_forever()` in a thread, `shutdown()` from another."""
    attributes = {"origins": staticmethod(lambda large: uploads if large else api),
                  "edge_secret": edge_secret, "quiet": quiet}
    return EdgeServer((host, port), type("EdgeHandler", (_EdgeHandler,), attributes))


def serve_in_thread(server: EdgeServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="edge")
    thread.start()
    return thread
