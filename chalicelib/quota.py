"""Per-account storage: every kept version of every file counts against the owner's quota.

`storage_used_bytes` on the owner's user item is the running total. Reservations are conditional
updates, so two uploads racing for the last free bytes cannot both succeed.
"""

from __future__ import annotations

from pynamodb.exceptions import UpdateError

from .clients import QFIELD
from .config import settings
from .errors import OverQuota
from .models import User

# Tokens of these clients upload without a quota check, as in QFieldCloud: a surveyor's
# attachments must never be lost in the field because the account is full.
EXEMPT_CLIENT_TYPES = frozenset({QFIELD, "worker"})


def applies_to(client_type: str) -> bool:
    return client_type not in EXEMPT_CLIENT_TYPES


def quota_bytes(user: User) -> int:
    if user.storage_quota_bytes is not None:
        return int(user.storage_quota_bytes)
    return settings.default_storage_quota_bytes


def free_bytes(user: User) -> int:
    return quota_bytes(user) - int(user.storage_used_bytes or 0)


def over_quota_condition(user: User, added_bytes: int):
    """The condition under which `added_bytes` more still fit in the user's quota."""
    return User.storage_used_bytes <= quota_bytes(user) - added_bytes


def _over_quota(owner: User, size: int) -> OverQuota:
    return OverQuota(
        f"`{owner.username}` has {max(free_bytes(owner), 0)} bytes of storage left; {size} are needed."
    )


def check_fits(owner: User, size: int, *, enforce: bool = True) -> None:
    """402 `over_quota` now if `size` more bytes would not fit (nothing is counted yet)."""
    if enforce and size > free_bytes(owner):
        raise _over_quota(owner, size)


def reserve(owner: User, size: int, *, enforce: bool = True) -> None:
    """Count `size` more bytes against `owner`; 402 `over_quota` if they do not fit."""
    condition = over_quota_condition(owner, size) if enforce else User.username_key.exists()
    try:
        owner.update(actions=[User.storage_used_bytes.add(size)], condition=condition)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise _over_quota(owner, size) from None
        raise


def release(owner_key: str, size: int) -> None:
    if size:
        User(owner_key).update(
            actions=[User.storage_used_bytes.add(-size)], condition=User.username_key.exists()
        )
