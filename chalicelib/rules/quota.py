"""Per-account storage: every kept version of every file counts against the owner's quota.

`storage_used_bytes` on the owner's user item is the running total. Reservations are conditional
updates, so two uploads racing for the last free bytes cannot both succeed.

How far a client may fill the account depends on the client its token was issued to:
- most clients up to the quota;
- QField up to the quota plus a grace margin (`quota_grace_percent`, 10 % by default): a
  surveyor's field data is not refused the moment the account is full, as QFieldCloud intends,
  but a User-Agent anyone can send no longer lifts the quota altogether (docs/security.md);
- the job worker without limit: its tokens are issued by the server, never at login.
"""

from __future__ import annotations

from pynamodb.exceptions import UpdateError

from chalicelib.config import settings
from chalicelib.errors import OverQuota
from chalicelib.models import User
from chalicelib.rules.client_types import QFIELD

UNLIMITED_CLIENT_TYPES = frozenset({"worker"})
GRACE_CLIENT_TYPES = frozenset({QFIELD})


def quota_bytes(user: User) -> int:
    if user.storage_quota_bytes is not None:
        return int(user.storage_quota_bytes)
    return settings.default_storage_quota_bytes


def limit_bytes(user: User, client_type: str | None) -> int | None:
    """How many bytes the account may hold when `client_type` uploads (None: no limit)."""
    if client_type in UNLIMITED_CLIENT_TYPES:
        return None
    quota = quota_bytes(user)
    if client_type in GRACE_CLIENT_TYPES:
        return quota + quota * settings.quota_grace_percent // 100
    return quota


def free_bytes(user: User, client_type: str | None = None) -> int:
    limit = limit_bytes(user, client_type)
    return (quota_bytes(user) if limit is None else limit) - int(user.storage_used_bytes or 0)


def over_quota_condition(user: User, added_bytes: int, client_type: str | None = None):
    """The condition under which `added_bytes` more still fit in what the account may hold."""
    limit = limit_bytes(user, client_type)
    if limit is None:
        return User.username_key.exists()
    return User.storage_used_bytes <= limit - added_bytes


def _over_quota(owner: User, size: int, client_type: str | None) -> OverQuota:
    return OverQuota(
        f"`{owner.username}` has {max(free_bytes(owner, client_type), 0)} bytes of storage left; "
        f"{size} are needed."
    )


def check_fits(owner: User, size: int, client_type: str | None) -> None:
    """402 `over_quota` now if `size` more bytes would not fit (nothing is counted yet)."""
    limit = limit_bytes(owner, client_type)
    if limit is not None and size > limit - int(owner.storage_used_bytes or 0):
        raise _over_quota(owner, size, client_type)


def reserve(owner: User, size: int, client_type: str | None) -> None:
    """Count `size` more bytes against `owner`; 402 `over_quota` if they do not fit."""
    try:
        owner.update(actions=[User.storage_used_bytes.add(size)],
                     condition=over_quota_condition(owner, size, client_type))
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise _over_quota(owner, size, client_type) from None
        raise


def release(owner_key: str, size: int) -> None:
    if size:
        User(owner_key).update(
            actions=[User.storage_used_bytes.add(-size)], condition=User.username_key.exists()
        )
