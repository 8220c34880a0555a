"""The login lockout: attempts are counted before the password is checked, per account and
source address, so a crowd of guesses cannot all be evaluated and nobody can lock anyone else out
by sending a few wrong passwords (docs/security.md)."""

from __future__ import annotations

import threading
import time

import pytest

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
