"""The worker's egress proxy, the QGIS child's only way to the web (job_containers/egress.py): it
connects only where the job's host policy allows, to the address it checked, and a job's requests
to servers that stall cost it a bounded budget, not its whole time limit. Real sockets on
loopback; the "servers" are listeners of this test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from chalicelib.rules.job_hosts import HostPolicy
from job_containers import egress


class Listener:
    """A server on loopback that counts the connections it gets; it answers each with `reply`,
    or never answers when `reply` is None. A failure in its thread fails the test."""

    def __init__(self, reply: bytes | None):
        self.reply = reply
        self.connections = 0
        self.errors: list[BaseException] = []
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            while True:
                connection, _ = self.socket.accept()
                self.connections += 1
                if self.reply is None:
                    self.held.append(connection)  # silent: holds the connection open
                    continue
                connection.recv(65536)
                connection.sendall(self.reply)
                connection.close()
        except OSError:
            pass  # closed by the test
        except BaseException as error:
            self.errors.append(error)

    def close(self) -> None:
        self.socket.close()
        for connection in self.held:
            connection.close()
        assert not self.errors, self.errors


@contextmanager
def listening(reply: bytes | None) -> Iterator[Listener]:
    listener = Listener(reply)
    try:
        yield listener
    finally:
        listener.close()


HELLO = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"


@pytest.fixture
def proxy() -> egress.EgressProxy:
    return egress.EgressProxy()


def _get(proxy: egress.EgressProxy, url: str, timeout: float = 30) -> requests.Response:
    return requests.get(url, proxies={"http": f"http://{proxy.address}", "https": f"http://{proxy.address}"},
                        timeout=timeout)


def test_a_request_to_loopback_is_refused_and_never_reaches_the_server(proxy):
    proxy.begin_job(HostPolicy())
    with listening(HELLO) as server:
        for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]"):
            reply = _get(proxy, f"http://{host}:{server.port}/secret")
            assert reply.status_code == 403 and "not a public internet address" in reply.text
        with pytest.raises(requests.exceptions.ProxyError):  # CONNECT, as https goes
            _get(proxy, f"https://127.0.0.1:{server.port}/secret")
        assert server.connections == 0


def test_an_allowed_host_is_reached_through_the_proxy(proxy):
    proxy.begin_job(HostPolicy(("127.0.0.1",)))
    with listening(HELLO) as server:
        reply = _get(proxy, f"http://127.0.0.1:{server.port}/data")
        assert (reply.status_code, reply.text) == (200, "hello")
        assert server.connections == 1


def test_servers_that_never_answer_cost_a_job_its_network_budget_only(proxy, monkeypatch):
    monkeypatch.setattr(egress, "WINDOW_SECONDS", 0.2)
    proxy.begin_job(HostPolicy(("127.0.0.1",)), budget_seconds=1.0)
    with listening(None) as silent:
        # The proxy ends it (the connection is closed: ConnectionError): the client's 120 s would
        # end in a ReadTimeout, which is not one.
        with pytest.raises(requests.exceptions.ConnectionError) as ended:
            _get(proxy, f"http://127.0.0.1:{silent.port}/never", timeout=120)
        assert not isinstance(ended.value, requests.exceptions.Timeout)
        reply = _get(proxy, f"http://127.0.0.1:{silent.port}/again", timeout=120)  # at once, without trying
        assert reply.status_code == 503 and "slow or silent servers" in reply.text
        assert silent.connections == 1


def test_a_new_job_starts_with_a_budget_of_its_own(proxy):
    proxy.begin_job(HostPolicy(("127.0.0.1",)), budget_seconds=0)
    with listening(HELLO) as server:
        assert _get(proxy, f"http://127.0.0.1:{server.port}/").status_code == 503
        proxy.begin_job(HostPolicy(("127.0.0.1",)))
        assert _get(proxy, f"http://127.0.0.1:{server.port}/").status_code == 200
