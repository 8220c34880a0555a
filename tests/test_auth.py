"""Logging in and out, tokens, and the lockout after repeated failures."""

from datetime import timedelta

import pytest

from tests.conftest import PASSWORD

LOGIN_FIELDS = {"token", "username", "email", "first_name", "last_name", "full_name", "avatar_url"}


@pytest.fixture
def alice(api):
    from chalicelib.services import accounts

    accounts.create_user("alice", PASSWORD, email="alice@example.com", first_name="Alice",
                         last_name="Liddell")
    return api.as_anonymous()


@pytest.mark.parametrize("path", ["auth/login/", "auth/token/"])
@pytest.mark.parametrize("encoding", ["data", "json"])
def test_login_with_form_or_json_returns_a_token_and_the_user(alice, path, encoding):
    reply = alice.post(path, **{encoding: {"username": "alice", "password": PASSWORD}})
    assert reply.status == 200
    body = reply.json()
    assert body.keys() >= LOGIN_FIELDS
    assert body["username"] == "alice"
    assert body["full_name"] == "Alice Liddell"
    assert len(body["token"]) >= 32
    assert alice.with_token(body["token"]).get("auth/user/").json()["username"] == "alice"


def test_login_by_email_and_with_any_username_case(alice):
    assert alice.post("auth/login/", data={"email": "ALICE@example.com", "password": PASSWORD}).status == 200
    assert alice.post("auth/login/", data={"username": "ALICE", "password": PASSWORD}).status == 200


@pytest.mark.parametrize("username", ["alice", "nobody"])
def test_bad_credentials_are_401_authentication_failed(alice, username):
    reply = alice.post("auth/login/", data={"username": username, "password": "wrong password"})
    assert (reply.status, reply.code) == (401, "authentication_failed")
    assert "token" not in reply.json()


def test_login_without_password_is_a_validation_error(alice):
    reply = alice.post("auth/login/", data={"username": "alice"})
    assert (reply.status, reply.code) == (400, "validation_error")


@pytest.mark.parametrize("scheme", ["Token", "token", "TOKEN"])
def test_the_token_scheme_is_matched_case_insensitively(alice, scheme):
    token = alice.post("auth/login/", data={"username": "alice", "password": PASSWORD}).json()["token"]
    reply = alice.get("auth/user/", headers={"Authorization": f"{scheme} {token}"})
    assert reply.status == 200


def test_a_bogus_token_is_401_even_on_anonymous_endpoints(alice):
    bogus = alice.with_token("x" * 40)
    for path in ("projects/", "auth/user/", "status/"):
        reply = bogus.get(path)
        assert (reply.status, reply.code) == (401, "token_authentication_failed"), path


def test_anonymous_callers_are_401_not_authenticated(alice):
    for path in ("projects/", "auth/user/", "projects/public/"):
        reply = alice.get(path)
        assert (reply.status, reply.code) == (401, "not_authenticated"), path


@pytest.mark.parametrize("method", ["get", "post"])
def test_logout_revokes_the_token(alice, method):
    client = alice.login("alice", PASSWORD)
    reply = getattr(client, method)("auth/logout/")
    assert reply.status == 200 and reply.json()["detail"]
    reply = client.get("auth/user/")
    assert (reply.status, reply.code) == (401, "token_authentication_failed")


def test_tokens_are_stored_only_as_hashes(alice):
    from chalicelib.models import AuthToken

    token = alice.login("alice", PASSWORD).token
    stored = [item.attribute_values for item in AuthToken.by_user.query("alice")]
    assert stored and all(token not in str(values) for values in stored)


def test_an_expired_token_is_refused(alice):
    from chalicelib.models import AuthToken
    from chalicelib.models.base import utcnow

    client = alice.login("alice", PASSWORD)
    for item in AuthToken.by_user.query("alice"):
        item.update(actions=[AuthToken.expires_at.set(utcnow() - timedelta(seconds=1))])
    reply = client.get("auth/user/")
    assert (reply.status, reply.code) == (401, "token_authentication_failed")


def test_a_new_qfield_login_replaces_the_previous_qfield_token_but_sdk_tokens_add_up(alice):
    qfield = alice.as_anonymous()
    qfield.user_agent = "qfield|3.4.0|3.4.0|abc|"
    first, second = (qfield.login("alice", PASSWORD) for _ in range(2))
    assert first.get("auth/user/").status == 401
    assert second.get("auth/user/").status == 200
    sdk_first, sdk_second = (alice.login("alice", PASSWORD) for _ in range(2))
    assert sdk_first.get("auth/user/").status == 200
    assert sdk_second.get("auth/user/").status == 200


def test_repeated_failures_lock_the_address_out_and_the_count_lives_in_dynamodb(alice):
    from chalicelib.config import settings
    from chalicelib.models import LoginAttempts

    wrong = {"username": "alice", "password": "wrong password"}
    codes = [alice.post("auth/login/", data=wrong).code for _ in range(settings.login_failure_limit)]
    assert codes[:-1] == ["authentication_failed"] * (settings.login_failure_limit - 1)
    assert codes[-1] == "too_many_failed_login_attempts"
    right = {"username": "alice", "password": PASSWORD}
    reply = alice.post("auth/login/", data=right)
    assert (reply.status, reply.code) == (401, "too_many_failed_login_attempts")
    counts = {item.key.split("|")[1]: int(item.attempts) for item in LoginAttempts.scan()}
    assert counts == {"127.0.0.1": settings.login_failure_limit, "*": settings.login_failure_limit}


def test_providers_and_server_info_need_no_login(api):
    credentials = {"type": "credentials", "id": "credentials", "name": "Username / Password"}
    assert api.get("auth/providers/").json() == [credentials]  # a bare array, as QFieldCloud answers
    info = api.get("server/info/")
    assert info.headers["Cache-Control"] == "max-age=60"
    body = info.json()
    # password_reset_enabled is an addition of this server (docs/api.md, "Accounts").
    assert set(body) == {"whitelabel", "auth_providers", "signup_url", "password_reset_enabled"}
    assert set(body["whitelabel"]) == {"site_title", "logo_navbar", "logo_main", "favicon"}
    assert body["auth_providers"] == [credentials] and body["signup_url"] is None
    assert body["password_reset_enabled"] is False  # off until the operator names a sender
    assert api.with_token("bogus").get("server/info/").status == 401
