"""API tokens: issuing them at login, finding who holds one, revoking them at logout."""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.config import settings
from chalicelib.errors import NotEnabled, ObjectNotFound, TokenAuthenticationFailed
from chalicelib.models import AuthToken, User
from chalicelib.models.base import utcnow
from chalicelib.rules.client_types import client_type_for
from chalicelib.rules.permissions import AccountAction, require_on_account
from chalicelib.services.accounts import authenticate_credentials, create_user
from chalicelib.services.inputs import Login, SignUp

TOKEN_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 40  # 40 characters of 62 symbols: about 238 bits
# Clients of these types keep one active token each: a new login replaces the previous one.
SINGLE_TOKEN_CLIENT_TYPES = frozenset({"qfield", "qfieldsync", "unknown"})
LAST_USED_RESOLUTION = timedelta(minutes=5)


@dataclass(frozen=True)
class Caller:
    """Who is making the request, and with which kind of client."""

    user: User
    client_type: str
    # The SHA-256 of the token of this request (its id in `auth/tokens/`).
    token_hash: str | None = None

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def key(self) -> str:
        return self.user.username_key


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def issue_token(user: User, user_agent: str) -> tuple[str, AuthToken]:
    """A new token for `user`; the key is returned once and only its hash is stored."""
    client_type = client_type_for(user_agent)
    if client_type in SINGLE_TOKEN_CLIENT_TYPES:
        with AuthToken.batch_write() as batch:
            for old in AuthToken.by_user.query(user.username_key):
                if old.client_type == client_type:
                    batch.delete(old)
    key = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))
    expires_at = utcnow() + timedelta(hours=settings.token_expiration_hours)
    token = AuthToken(
        _hash(key),
        username_key=user.username_key,
        client_type=client_type,
        user_agent=user_agent[:512],
        expires_at=expires_at,
        purge_at=expires_at + timedelta(days=1),
    )
    token.save(condition=AuthToken.token_hash.does_not_exist())
    return key, token


@dataclass(frozen=True)
class Session:
    """A successful login: the user and the new token's key, shown to the client once."""

    user: User
    token_key: str
    expires_at: datetime


def login(credentials: Login, user_agent: str, source_address: str | None) -> Session:
    user = authenticate_credentials(credentials.username, credentials.email, credentials.password,
                                    source_address)
    key, token = issue_token(user, user_agent)
    return Session(user, key, token.expires_at)


def sign_up(data: SignUp, user_agent: str) -> Session:
    """A new person, signed in at once; only where the operator enables sign-up (`QFC_SIGNUP`)."""
    if not settings.signup_enabled:
        raise NotEnabled("Sign-up is not enabled on this server; ask an administrator for an account.")
    user = create_user(data.username, data.password, email=data.email, first_name=data.first_name,
                       last_name=data.last_name)
    key, token = issue_token(user, user_agent)
    return Session(user, key, token.expires_at)


def tokens_of(caller: Caller) -> list[AuthToken]:
    """The caller's tokens, oldest first (one Query of the user's index)."""
    require_on_account(caller.user, caller.key, AccountAction.MANAGE_TOKENS)
    now = utcnow()
    return [token for token in AuthToken.by_user.query(caller.key) if token.expires_at > now]


def revoke_token(caller: Caller, token_id: str) -> None:
    """Revoke one of the caller's tokens (by its id, the SHA-256 `tokens_of` lists); another
    person's is as unknown as one that does not exist."""
    require_on_account(caller.user, caller.key, AccountAction.MANAGE_TOKENS)
    try:
        token = AuthToken.get(token_id)
    except DoesNotExist:
        token = None
    if token is None or token.username_key != caller.key:
        raise ObjectNotFound("You have no such token.")
    token.delete()


def revoke_all_tokens(user: User) -> None:
    with AuthToken.batch_write() as batch:
        for token in AuthToken.by_user.query(user.username_key):
            batch.delete(token)


def caller_with_token(key: str) -> Caller:
    """Who holds the token `key` (from `Authorization: Token <key>`, which the router reads):
    401 `token_authentication_failed` for a token that is unknown, expired, revoked meanwhile, or
    whose user was deactivated. Its use is noted, at most every LAST_USED_RESOLUTION."""
    try:
        token = AuthToken.get(_hash(key))
        user = User.get(token.username_key)
    except DoesNotExist:
        raise TokenAuthenticationFailed() from None
    now = utcnow()
    if token.expires_at <= now or not user.is_active:
        raise TokenAuthenticationFailed()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        try:  # the condition keeps a token revoked meanwhile from coming back
            token.update(actions=[AuthToken.last_used_at.set(now)],
                         condition=AuthToken.token_hash.exists())
        except UpdateError:
            raise TokenAuthenticationFailed() from None
    return Caller(user=user, client_type=token.client_type, token_hash=token.token_hash)
