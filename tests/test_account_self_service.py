"""Account self-service (docs/api.md, "Accounts"): one's own password and tokens, staff setting
passwords and deactivating people, the password reset by e-mail and sign-up (both off unless the
operator turns them on), and restoring an old file version."""

from __future__ import annotations

import re
from email import message_from_bytes

import pytest

from tests.conftest import PASSWORD

NEW = "a brand new password"


def test_changing_ones_password_keeps_this_session_and_ends_the_others(users, api):
    alice = users("alice")
    laptop = api.login("alice", PASSWORD)
    reply = alice.post("auth/password/change/", json={"current_password": PASSWORD, "new_password": NEW})
    assert reply.status == 200, reply.content
    assert alice.get("auth/user/").status == 200
    assert laptop.get("auth/user/").code == "token_authentication_failed"
    old_login = {"username": "alice", "password": PASSWORD}
    assert api.as_anonymous().post("auth/login/", json=old_login).status == 401
    assert api.login("alice", NEW).get("auth/user/").json()["username"] == "alice"


@pytest.mark.parametrize(("body", "message"), [
    ({"current_password": "not it at all", "new_password": NEW}, "current password"),
    ({"current_password": PASSWORD, "new_password": "short"}, "8 characters"),
    ({"new_password": NEW}, "current_password"),
])
def test_a_refused_password_change_changes_nothing(users, api, body, message):
    alice = users("alice")
    reply = alice.post("auth/password/change/", json=body)
    assert (reply.status, reply.code) == (400, "validation_error") and message in reply.json()["message"]
    assert api.login("alice", PASSWORD).get("auth/user/").status == 200


def test_patching_a_password_on_the_user_is_refused_and_points_at_the_password_endpoint(users, api):
    alice = users("alice")
    reply = alice.patch("users/alice/", json={"password": NEW, "first_name": "Alice"})
    assert (reply.status, reply.code) == (400, "validation_error")
    assert "auth/password/change/" in reply.json()["message"]
    assert alice.get("users/alice/").json()["first_name"] == ""  # nothing else changed either
    assert api.login("alice", PASSWORD).get("auth/user/").status == 200


def test_staff_set_a_password_and_deactivate_and_activate_a_person(users, api):
    root, bob = users("root", is_staff=True), users("bob")
    assert root.get("auth/user/").json()["is_staff"] is True
    assert bob.get("auth/user/").json()["is_staff"] is False
    assert bob.post("users/root/password/", json={"new_password": NEW}).code == "permission_denied"
    assert root.post("users/bob/password/", json={"new_password": NEW}).status == 200
    assert bob.get("auth/user/").code == "token_authentication_failed"
    bob = api.login("bob", NEW)
    deactivated = root.post("users/bob/deactivate/")
    assert deactivated.json() == {"username": "bob", "is_active": False}
    assert bob.get("auth/user/").code == "token_authentication_failed"
    assert api.as_anonymous().post("auth/login/", json={"username": "bob", "password": NEW}).status == 401
    assert root.post("users/root/deactivate/").code == "validation_error"
    assert root.post("users/bob/activate/").json() == {"username": "bob", "is_active": True}
    assert api.login("bob", NEW).get("auth/user/").status == 200


def test_one_lists_ones_own_tokens_and_revokes_one(users, api):
    alice = users("alice")
    other = api.login("alice", PASSWORD)
    users("bob")
    listed = alice.get("auth/tokens/").json()
    assert len(listed) == 2 and sum(token["is_current"] for token in listed) == 1
    assert {"id", "client_type", "user_agent", "created_at", "last_used_at", "expires_at"} <= set(listed[0])
    other_id = next(token["id"] for token in listed if not token["is_current"])
    bobs = api.login("bob", PASSWORD)
    assert bobs.delete(f"auth/tokens/{other_id}/").code == "object_not_found"  # not bob's
    assert alice.delete(f"auth/tokens/{other_id}/").status == 204
    assert other.get("auth/user/").code == "token_authentication_failed"
    assert [token["is_current"] for token in alice.get("auth/tokens/").json()] == [True]


def test_sign_up_is_off_by_default_and_on_when_enabled(api, override_settings):
    anonymous = api.as_anonymous()
    body = {"username": "newcomer", "email": "new@example.com", "password": NEW}
    assert (anonymous.post("auth/signup/", json=body).code) == "not_enabled"
    assert anonymous.get("server/info/").json()["signup_url"] is None
    override_settings(signup_enabled=True)
    assert anonymous.get("server/info/").json()["signup_url"] == "http://testserver/#/signup"
    reply = anonymous.post("auth/signup/", json=body)
    assert reply.status == 201, reply.content
    assert api.with_token(reply.json()["token"]).get("auth/user/").json()["username"] == "newcomer"
    assert anonymous.post("auth/signup/", json=body).code == "object_already_exists"
    assert anonymous.post("auth/signup/", json={**body, "username": "x"}).code == "validation_error"


def _mails(folder) -> list:
    return [message_from_bytes(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]


def test_password_reset_by_mail_is_off_without_a_sender(users, api):
    users("alice")
    reply = api.as_anonymous().post("auth/password/reset/", json={"email": "alice@example.com"})
    assert (reply.status, reply.code) == (403, "not_enabled")
    assert api.as_anonymous().get("server/info/").json()["password_reset_enabled"] is False


def test_password_reset_by_mail_sets_a_new_password_once(users, api, override_settings, tmp_path):
    folder = tmp_path / "mail"
    override_settings(mail_sender="cloud@example.com", mail_folder=str(folder))
    alice = users("alice")
    anonymous = api.as_anonymous()
    for wanted in ({"email": "alice@example.com"}, {"email": "nobody@example.com"}):
        reply = anonymous.post("auth/password/reset/", json=wanted)
        assert reply.status == 202, reply.content  # the same answer whether or not the account exists
    anonymous.post("auth/password/reset/", json={"username": "alice"})  # soon again: no second mail
    [mail] = _mails(folder)
    assert mail["To"] == "alice@example.com" and mail["From"] == "cloud@example.com"
    token = re.search(r"#/reset/(\S+)", mail.get_payload()).group(1)
    assert mail.get_payload().startswith("Hello alice") and "http://testserver/#/reset/" in mail.get_payload()
    wrong = anonymous.post("auth/password/reset/confirm/", json={"token": token + "x", "new_password": NEW})
    assert wrong.code == "validation_error"
    done = anonymous.post("auth/password/reset/confirm/", json={"token": token, "new_password": NEW})
    assert done.status == 200, done.content
    assert alice.get("auth/user/").code == "token_authentication_failed"
    assert api.login("alice", NEW).get("auth/user/").status == 200
    again = anonymous.post("auth/password/reset/confirm/", json={"token": token, "new_password": "another!!"})
    assert again.code == "validation_error"


def test_an_expired_reset_link_is_refused(users, api, override_settings, tmp_path):
    folder = tmp_path / "mail"
    override_settings(mail_sender="cloud@example.com", mail_folder=str(folder), password_reset_minutes=0)
    users("alice")
    api.as_anonymous().post("auth/password/reset/", json={"email": "alice@example.com"})
    token = re.search(r"#/reset/(\S+)", _mails(folder)[0].get_payload()).group(1)
    confirm = {"token": token, "new_password": NEW}
    reply = api.as_anonymous().post("auth/password/reset/confirm/", json=confirm)
    assert reply.code == "validation_error" and "expired" in reply.json()["message"]


def test_restoring_a_version_makes_a_copy_of_it_the_newest(alice, pid):
    for content in (b"first\n", b"second\n"):
        assert alice.post(f"files/{pid}/notes.txt/", files={"file": ("x", content)}).status == 201
    [entry] = alice.get(f"files/{pid}/").json()
    first = entry["versions"][-1]
    reply = alice.post(f"files/restore/{pid}/notes.txt/", json={"version_id": first["version_id"]})
    assert reply.status == 201, reply.content
    assert reply.json()["md5sum"] == first["md5sum"] and reply.json()["sha256"] == first["sha256"]
    [entry] = alice.get(f"files/{pid}/").json()
    assert len(entry["versions"]) == 3 and entry["md5sum"] == first["md5sum"]
    link = alice.get(f"files/links/{pid}/notes.txt/").json()
    assert link["url"].startswith("http") and link["expires_at"].endswith("Z")
    import requests  # the presigned URL is served by moto in this process

    assert requests.get(link["url"], timeout=10).content == b"first\n"
    unknown = {"version_id": "2f1b5d3e-9a41-4d8e-9d32-7b6f0e2c1a11"}
    missing = alice.post(f"files/restore/{pid}/notes.txt/", json=unknown)
    assert missing.code == "object_not_found"


def test_a_reader_cannot_restore_a_version(alice, users, pid):
    users("rita")
    alice.post(f"collaborators/{pid}/", json={"collaborator": "rita", "role": "reader"})
    alice.post(f"files/{pid}/a.txt/", files={"file": ("x", b"a")})
    version = alice.get(f"files/{pid}/").json()[0]["versions"][0]["version_id"]
    rita = alice.login("rita", PASSWORD)
    assert rita.post(f"files/restore/{pid}/a.txt/", json={"version_id": version}).code == "permission_denied"
    assert rita.get(f"files/links/{pid}/a.txt/").status == 200


def _ses_sent_messages() -> list:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    from chalicelib.config import settings

    return ses_backends[DEFAULT_ACCOUNT_ID][settings.region].sent_messages


def test_on_aws_the_reset_mail_goes_through_ses_from_the_verified_sender(users, api, override_settings):
    """Without a mail folder (as on AWS) the mail is SES's, through moto's SES."""
    import boto3

    from chalicelib.config import settings

    override_settings(mail_sender="cloud@example.com", mail_folder=None)
    users("alice")
    anonymous = api.as_anonymous()
    refused = anonymous.post("auth/password/reset/", json={"email": "alice@example.com"})
    # SES refuses a sender nobody verified: a clear 503, nothing sent, and no link left pending
    assert (refused.status, refused.code) == (503, "mail_not_sent"), refused.content
    assert _ses_sent_messages() == []
    boto3.client("ses", region_name=settings.region).verify_email_identity(EmailAddress="cloud@example.com")
    reply = anonymous.post("auth/password/reset/", json={"email": "alice@example.com"})
    assert reply.status == 202, reply.content  # at once: the refused attempt left nothing to wait for
    [sent] = _ses_sent_messages()
    assert (sent.source, sent.destinations["ToAddresses"]) == ("cloud@example.com", ["alice@example.com"])
    token = re.search(r"#/reset/(\S+)", sent.body).group(1)
    done = anonymous.post("auth/password/reset/confirm/", json={"token": token, "new_password": NEW})
    assert done.status == 200, done.content
    assert api.login("alice", NEW).get("auth/user/").status == 200
