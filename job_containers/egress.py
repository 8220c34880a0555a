"""The QGIS child's way to the web: an HTTP proxy in the worker that connects only where a job may
go, and cuts a job's waiting on slow servers short.

The child's QGIS and GDAL send every web request through it (sandbox.child_environment,
qgis_app.start). For each request the proxy resolves the host itself, checks every address
against the job's HostPolicy and connects to the address it checked: a URL the source checks
never saw (a WMS capabilities document pointing its GetMap elsewhere, an SVG in a style, a tile
URL) and a name that resolves differently the second time (DNS rebinding) gain nothing.

Slow servers: every connection that moves less than `SLOW_BYTES_PER_SECOND` over a window of
`WINDOW_SECONDS` spends that window from the job's network budget; once it is spent, the proxy
answers every new request with 503 at once and closes the slow connections. A project whose
layers point at servers that never answer costs its worker that budget, not the job's time limit.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from chalicelib.rules.job_hosts import HostPolicy, Refused

CONNECT_SECONDS = 5
WINDOW_SECONDS = 5.0
SLOW_BYTES_PER_SECOND = 10_000
IDLE_SECONDS = 30
DEFAULT_BUDGET_SECONDS = 30.0
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate",
               "te", "trailer", "upgrade"}


class _Job:
    """What the proxy knows of the job its worker runs now."""

    def __init__(self, policy: HostPolicy, budget_seconds: float):
        self.policy = policy
        self.budget_seconds = budget_seconds
        self.spent = 0.0
        self.lock = threading.Lock()

    def spend(self, seconds: float) -> None:
        with self.lock:
            self.spent += seconds

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.budget_seconds


class EgressProxy:
    def __init__(self) -> None:
        self.job = _Job(HostPolicy(), DEFAULT_BUDGET_SECONDS)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.egress = self
        threading.Thread(target=self.server.serve_forever, name="egress-proxy", daemon=True).start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def begin_job(self, policy: HostPolicy, budget_seconds: float = DEFAULT_BUDGET_SECONDS) -> None:
        self.job = _Job(policy, budget_seconds)

    def connect(self, host: str, port: int) -> socket.socket:
        """A connection to `host`, to an address the job's policy allows; raises Refused."""
        job = self.job
        if job.exhausted:
            raise Refused("The job spent its time waiting for slow or silent servers.")
        addresses = job.policy.addresses(host, port)
        error: OSError | None = None
        for address in addresses:
            try:
                return socket.create_connection((str(address), port), timeout=CONNECT_SECONDS)
            except OSError as failure:
                job.spend(CONNECT_SECONDS if isinstance(failure, TimeoutError) else 0)
                error = failure
        raise error or OSError(f"could not connect to {host}")


_proxy: EgressProxy | None = None
_proxy_lock = threading.Lock()


def proxy() -> EgressProxy:
    """This worker's proxy, started on first use."""
    global _proxy
    with _proxy_lock:
        if _proxy is None:
            _proxy = EgressProxy()
        return _proxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass  # the job's own log says what failed

    @property
    def egress(self) -> EgressProxy:
        return self.server.egress

    def do_CONNECT(self) -> None:  # noqa: N802 (http.server's name)
        host, _, port = self.path.rpartition(":")
        upstream = self._open(host, port)
        if upstream is None:
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self._relay(upstream)

    def _forward(self) -> None:
        """A plain-http request in absolute form: sent on as the only request of a connection."""
        target = urlsplit(self.path)
        if target.scheme != "http" or not target.hostname:
            self._refuse(400, "Only http:// requests are proxied; https goes through CONNECT.")
            return
        upstream = self._open(target.hostname, str(target.port or 80))
        if upstream is None:
            return
        path = target.path or "/"
        lines = [f"{self.command} {path}{'?' + target.query if target.query else ''} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()
                  if name.lower() not in _HOP_BY_HOP]
        lines.append("Connection: close")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self.close_connection = True
        self._relay(upstream)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _forward  # noqa: N815

    def _open(self, host: str, port: str) -> socket.socket | None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            self._refuse(400, "Bad port.")
            return None
        try:
            return self.egress.connect(host.strip("[]"), int(port))
        except Refused as refusal:
            self._refuse(403 if not self.egress.job.exhausted else 503, str(refusal))
        except OSError as error:
            self._refuse(504 if isinstance(error, TimeoutError) else 502, f"Could not connect to {host}.")
        return None

    def _refuse(self, status: int, reason: str) -> None:
        body = reason.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def _relay(self, upstream: socket.socket) -> None:
        """Bytes both ways until either side closes, the connection idles, or the job's network
        budget is spent; a slow window is paid from that budget."""
        job = self.egress.job
        client = self.connection
        window_start = last_data = time.monotonic()
        window_bytes = 0
        try:
            while not job.exhausted:
                readable, _, _ = select.select([client, upstream], [], [], WINDOW_SECONDS)
                now = time.monotonic()
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)
                    window_bytes += len(data)
                    last_data = now
                if now - window_start >= WINDOW_SECONDS:
                    if window_bytes < SLOW_BYTES_PER_SECOND * (now - window_start):
                        job.spend(now - window_start)
                    window_start, window_bytes = now, 0
                if now - last_data >= IDLE_SECONDS:
                    return
        except OSError:
            return
        finally:
            upstream.close()
            self.close_connection = True
