"""The login lockout: attempts are counted before the password is checked, per account and
source address, so a crowd of guesses cannot all be evaluated and nobody can lock anyone else out
by sending a few wrong passwords (docs/security.md). The address is the viewer's, as the edge
reports it: every request reaches API Gateway from the edge, as on AWS from CloudFront."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from urllib.parse import urlencode

import pytest

from chalicelib.http.client_address import EDGE_SECRET_HEADER, VIEWER_ADDRESS_HEADER
from tests.client import ApiClient
from tests.conftest import PASSWORD
from tests.waiting import wait_until

WRONG = "wrong password"
LIMIT = 5


@pytest.fixture
def anonymous(api, override_settings):
    from chalicelib.services import accounts

    override_settings(login_failure_limit=LIMIT)
    accounts.create_user("alice", PASSWORD, email="alice@example.com")
    return api.as_anonymous()


def _login(client, password, **identity):
    identity = identity or {"username": "alice"}
    return client.post("auth/login/", data={**identity, "password": password})


def test_concurrent_wrong_passwords_are_not_all_evaluated_and_a_right_one_among_them_is_locked_out(
    anonymous, monkeypatch
):
    from argon2 import PasswordHasher

    verify = PasswordHasher.verify
    release = threading.Event()
    evaluated: list[str] = []

    def slow_verify(self, password_hash, password):
        evaluated.append(password)
        if password == WRONG:
            release.wait()  # keep every wrong guess in flight until the right one was tried
        return verify(self, password_hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", slow_verify)
    replies = []
    guesses = [threading.Thread(target=lambda: replies.append(_login(anonymous, WRONG)))
               for _ in range(20)]
    for guess in guesses:
        guess.start()
    try:
        # Every guess counted: held in the password check, or refused without one.
        wait_until(lambda: len(evaluated) + len(replies) == 20, "the guesses were not all counted")
        right = _login(anonymous, PASSWORD)
    finally:
        release.set()
        for guess in guesses:
            guess.join()

    assert (right.status, right.code) == (401, "too_many_failed_login_attempts")
    assert evaluated.count(WRONG) <= LIMIT
    codes = sorted(reply.code for reply in replies)
    assert codes.count("too_many_failed_login_attempts") >= 20 - LIMIT
    assert all(reply.status == 401 for reply in replies)


def test_the_limit_holds_per_source_address_so_others_can_still_log_in(anonymous):
    attacker = anonymous.from_address("198.51.100.7")
    codes = [_login(attacker, WRONG).code for _ in range(LIMIT)]
    assert codes == ["authentication_failed"] * (LIMIT - 1) + ["too_many_failed_login_attempts"]
    # Locked for that address: even the right password is refused there ...
    assert _login(attacker, PASSWORD).code == "too_many_failed_login_attempts"
    # ... but the owner, elsewhere, is not locked out.
    owner = anonymous.from_address("203.0.113.20")
    assert _login(owner, PASSWORD).status == 200


def test_ipv6_addresses_of_one_network_share_their_count(anonymous):
    for host in range(LIMIT):
        _login(anonymous.from_address(f"2001:db8:1:2::{host + 1}"), WRONG)
    reply = _login(anonymous.from_address("2001:db8:1:2::ff"), PASSWORD)
    assert reply.code == "too_many_failed_login_attempts"
    assert _login(anonymous.from_address("2001:db8:1:3::1"), PASSWORD).status == 200


def test_the_email_path_shares_the_counter_of_the_username_path(anonymous):
    for _ in range(LIMIT - 2):
        assert _login(anonymous, WRONG).code == "authentication_failed"
    assert _login(anonymous, WRONG, email="alice@example.com").code == "authentication_failed"
    assert _login(anonymous, WRONG, email="ALICE@example.com").code == "too_many_failed_login_attempts"
    assert _login(anonymous, PASSWORD).code == "too_many_failed_login_attempts"
    assert _login(anonymous, PASSWORD, email="alice@example.com").code == "too_many_failed_login_attempts"


def test_a_success_resets_the_count_of_its_address(anonymous):
    for _ in range(LIMIT - 1):
        _login(anonymous, WRONG)
    assert _login(anonymous, PASSWORD).status == 200
    codes = [_login(anonymous, WRONG).code for _ in range(LIMIT - 1)]
    assert codes == ["authentication_failed"] * (LIMIT - 1)


def test_many_addresses_together_reach_the_account_wide_ceiling(anonymous, override_settings):
    override_settings(login_failure_limit_per_account=8)
    for attempt in range(8):
        _login(anonymous.from_address(f"198.51.100.{attempt}"), WRONG)
    reply = _login(anonymous.from_address("203.0.113.1"), PASSWORD)
    assert (reply.status, reply.code) == (401, "too_many_failed_login_attempts")


def test_the_lock_ends_with_its_window(anonymous, override_settings):
    from chalicelib.rules import login_throttle

    for _ in range(LIMIT):
        _login(anonymous, WRONG)
    assert _login(anonymous, PASSWORD).code == "too_many_failed_login_attempts"
    later = time.time() + 1800
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(login_throttle, "_now", lambda: later)
        assert _login(anonymous, PASSWORD).status == 200


def test_unknown_users_are_counted_too(anonymous):
    codes = [_login(anonymous, WRONG, username="nobody").code for _ in range(LIMIT + 1)]
    assert codes[-1] == "too_many_failed_login_attempts"


ATTACKER, OWNER = "198.51.100.7", "203.0.113.20"


def test_viewers_who_reach_the_api_through_one_edge_address_are_counted_apart(api, anonymous, monkeypatch):
    """On AWS every request comes to API Gateway from a CloudFront server, so the address it
    reports is shared by everyone using that server: an attacker's wrong passwords lock out the
    attacker's own address, not the owner behind the same server."""
    from devstack.edge import EDGE_ADDRESS

    reached_from: list[str] = []
    handle = api.gateway.handle

    def gateway_handle(method, target, headers, body, source_ip="127.0.0.1"):
        reached_from.append(source_ip)
        return handle(method, target, headers, body, source_ip)

    monkeypatch.setattr(api.gateway, "handle", gateway_handle)
    attacker = anonymous.from_address(ATTACKER)
    codes = [_login(attacker, WRONG).code for _ in range(LIMIT)]
    assert codes == ["authentication_failed"] * (LIMIT - 1) + ["too_many_failed_login_attempts"]
    assert _login(attacker, PASSWORD).code == "too_many_failed_login_attempts"
    assert _login(anonymous.from_address(OWNER), PASSWORD).status == 200
    assert set(reached_from) == {EDGE_ADDRESS}


@pytest.mark.parametrize("secret", [None, "a guess of the edge secret"])
def test_a_viewer_address_forged_on_the_gateway_itself_counts_under_the_callers_own(anonymous, secret):
    """API Gateway's execute-api URL stays reachable past CloudFront: a caller there who claims
    the owner's address, without the stack's edge secret, is counted under its own `sourceIp`."""
    direct = ApiClient(anonymous.gateway, source_ip=ATTACKER)  # no edge in front
    forged = {VIEWER_ADDRESS_HEADER: OWNER} | ({EDGE_SECRET_HEADER: secret} if secret else {})
    codes = [direct.post("auth/login/", data={"username": "alice", "password": WRONG}, headers=forged).code
             for _ in range(LIMIT)]
    assert codes[-1] == "too_many_failed_login_attempts"
    assert _login(anonymous.from_address(ATTACKER), PASSWORD).code == "too_many_failed_login_attempts"
    assert _login(anonymous.from_address(OWNER), PASSWORD).status == 200


def test_a_viewer_cannot_claim_another_address_through_the_edge(anonymous):
    """What a viewer sends under the edge's own header names is replaced by the edge."""
    forged = {VIEWER_ADDRESS_HEADER: OWNER, EDGE_SECRET_HEADER: "a guess of the edge secret"}
    attacker = anonymous.from_address(ATTACKER)
    for _ in range(LIMIT):
        attacker.post("auth/login/", data={"username": "alice", "password": WRONG}, headers=forged)
    assert _login(attacker, PASSWORD).code == "too_many_failed_login_attempts"
    assert _login(anonymous.from_address(OWNER), PASSWORD).status == 200


def test_wrong_current_passwords_lock_out_the_viewer_who_sent_them_only(anonymous):
    """A stolen token's holder guessing the current password (auth/password/change/) is counted
    under the holder's address, as a login is: the owner, elsewhere, still changes it."""
    thief = anonymous.from_address(ATTACKER).login("alice", PASSWORD)
    owner = anonymous.from_address(OWNER).login("alice", PASSWORD)
    new = "another long passphrase"
    codes = [thief.post("auth/password/change/", json={"current_password": WRONG, "new_password": new}).code
             for _ in range(LIMIT)]
    assert codes[-1] == "too_many_failed_login_attempts"
    reply = owner.post("auth/password/change/", json={"current_password": PASSWORD, "new_password": new})
    assert reply.status == 200, reply.content


@contextlib.contextmanager
def local_edge(gateway):
    """The local stack's edge and the gateway's HTTP server, over real sockets on loopback."""
    from chalicelib.config import settings
    from devstack.edge import make_edge, serve_in_thread
    from devstack.http_server import make_server

    server = make_server(gateway, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    no_large_requests = ("127.0.0.1", 9)  # nothing here is large
    edge = make_edge("127.0.0.1", 0, server.server_address, no_large_requests, settings.edge_secret,
                     quiet=True)
    serve_in_thread(edge)
    try:
        yield edge.server_address[1]
    finally:
        edge.shutdown()
        edge.server_close()
        server.shutdown()
        server.server_close()


def _login_from(port: int, viewer: str, password: str, headers: dict[str, str] | None = None) -> str:
    """The error code (or "" for a success) of a login sent from the loopback address `viewer`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(viewer, 0))
    try:
        body = urlencode({"username": "alice", "password": password})
        connection.request("POST", "/api/v1/auth/login/", body,
                           {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
        reply = connection.getresponse()
        body = reply.read()
    finally:
        connection.close()
    return "" if reply.status == 200 else json.loads(body)["code"]


def test_the_local_stacks_edge_reports_each_viewers_own_address(anonymous):
    """Over sockets: two viewers on two loopback addresses, whose requests the gateway's server
    receives from the edge's one address."""
    attacker, owner = "127.0.0.2", "127.0.0.1"
    with local_edge(anonymous.gateway) as port:
        forged = {VIEWER_ADDRESS_HEADER: owner, EDGE_SECRET_HEADER: "a guess"}
        codes = [_login_from(port, attacker, WRONG, forged) for _ in range(LIMIT)]
        assert codes[-1] == "too_many_failed_login_attempts"
        assert _login_from(port, attacker, PASSWORD) == "too_many_failed_login_attempts"
        assert _login_from(port, owner, PASSWORD) == ""
