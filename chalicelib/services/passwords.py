"""Passwords: changing one's own, a staff member setting another's, and the reset by e-mail
(docs/api.md, "Accounts").

Whatever sets a password ends the sessions it could have been stolen in: changing one's own
revokes every token but the caller's; a password set by staff or through a reset link revokes
them all. A reset link's secret is stored only as its SHA-256 on the user, works once, and
expires after `QFC_PASSWORD_RESET_MINUTES`; asking for one answers the same whether or not the
account exists, so the endpoint tells nobody which addresses have accounts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from pynamodb.exceptions import UpdateError

from chalicelib.adapters import mail
from chalicelib.config import settings
from chalicelib.errors import AuthenticationFailed, MailNotSent, NotEnabled, ValidationError
from chalicelib.models import AuthToken, User
from chalicelib.models.base import utcnow
from chalicelib.rules.permissions import AccountAction, require_on_account
from chalicelib.services.accounts import (
    authenticate_credentials,
    find_person,
    get_user,
    set_password,
    validate_password,
)
from chalicelib.services.auth import Caller, revoke_all_tokens
from chalicelib.services.inputs import PasswordChange, PasswordResetConfirm, PasswordResetRequest, PasswordSet

# A second reset mail for the same account is sent only once this much of the first link's
# validity has passed: asking again and again does not flood anyone's mailbox.
RESEND_AFTER = timedelta(minutes=5)
INVALID_LINK = "This password reset link is not valid or has expired; ask for a new one."


def change_own(caller: Caller, data: PasswordChange, source_address: str | None) -> None:
    """The caller's password, after checking the current one (counted like a login attempt, so
    a stolen token cannot be used to guess it)."""
    require_on_account(caller.user, caller.key, AccountAction.CHANGE_PASSWORD)
    try:
        authenticate_credentials(caller.username, None, data.current_password, source_address)
    except AuthenticationFailed:
        raise ValidationError("`current_password` is not the current password.") from None
    set_password(caller.user, data.new_password)
    with AuthToken.batch_write() as batch:
        for token in AuthToken.by_user.query(caller.key):
            if token.token_hash != caller.token_hash:
                batch.delete(token)


def set_by_staff(caller: Caller, username: str, data: PasswordSet) -> User:
    """Another person's password, set by staff: every session of theirs ends."""
    user = get_user(username)
    require_on_account(caller.user, user.username_key, AccountAction.SET_PASSWORD)
    if not user.is_person:
        raise ValidationError(f"`{username}` is not a person: only persons have a password.")
    set_password(user, data.new_password)
    revoke_all_tokens(user)
    return user


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def request_reset(data: PasswordResetRequest, console_url: str) -> None:
    """Mail a reset link to the person named by email or username, if there is one."""
    if settings.mail_sender is None:
        raise NotEnabled("Password reset by e-mail is not enabled on this server; ask an administrator.")
    if not (data.email or data.username):
        raise ValidationError("`email` or `username` is required.")
    user = find_person(data.email or data.username)
    if user is None or not user.email:
        return
    now = utcnow()
    lifetime = timedelta(minutes=settings.password_reset_minutes)
    pending = user.password_reset_expires_at
    if pending is not None and pending - now > lifetime - RESEND_AFTER:
        return
    secret = secrets.token_urlsafe(32)
    user.update(actions=[User.password_reset_hash.set(_digest(secret)),
                         User.password_reset_expires_at.set(now + lifetime)])
    link = f"{console_url}#/reset/{user.username_key}.{secret}"
    try:
        mail.send(user.email, "Reset your password",
                  f"Hello {user.username},\n\nsomeone (we hope you) asked to reset your password. "
                  f"Open this link within {settings.password_reset_minutes} minutes to choose a new one:\n\n"
                  f"{link}\n\nIf you did not ask for it, ignore this mail: your password stays as it is.\n")
    except MailNotSent:
        # No link went out: asking again must send one, not wait for this one to lapse.
        user.update(actions=[User.password_reset_hash.remove(), User.password_reset_expires_at.remove()])
        raise


def confirm_reset(data: PasswordResetConfirm) -> None:
    """Set the password of the link's account, once: the link is used up and every session ends."""
    if settings.mail_sender is None:
        raise NotEnabled("Password reset by e-mail is not enabled on this server; ask an administrator.")
    username_key, _, secret = data.token.partition(".")
    validate_password(data.new_password)
    user = find_person(username_key) if username_key and secret else None
    stored = user.password_reset_hash if user else None
    if (user is None or stored is None or user.password_reset_expires_at is None
            or user.password_reset_expires_at <= utcnow()
            or not hmac.compare_digest(stored, _digest(secret))):
        raise ValidationError(INVALID_LINK)
    try:  # the condition makes the link single-use even when it is sent twice at once
        user.update(actions=[User.password_reset_hash.remove(), User.password_reset_expires_at.remove()],
                    condition=User.password_reset_hash == stored)
    except UpdateError:
        raise ValidationError(INVALID_LINK) from None
    set_password(user, data.new_password)
    revoke_all_tokens(user)
