"""The login lockout: how many password attempts an account admits, and from where.

An attempt is counted, with one conditional ADD in DynamoDB, *before* its password is checked;
once a counter is at its limit the attempt is refused without checking anything. So a crowd of
concurrent guesses cannot all be evaluated, and every Lambda instance shares the count.

Counters live in fixed windows of `login_lockout_seconds` (30 minutes) and are kept per
account (what the username or the email names) and source address (an IPv6 address counts as
its /64 network, which one host usually holds whole): `login_failure_limit` (5) wrong
passwords from one address lock that address out of that account until the window ends, and
nobody else. A second counter per account, over all addresses, caps distributed guessing at
`login_failure_limit_per_account` (50) attempts per window. A success clears the count of its
address and does not count towards the account's. docs/security.md states the policy.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pynamodb.exceptions import DeleteError, UpdateError

from chalicelib.config import settings
from chalicelib.errors import TooManyLoginAttempts
from chalicelib.models import LoginAttempts

EVERYWHERE = "*"


def _now() -> float:
    return time.time()


def address_scope(source_address: str | None) -> str:
    """The address a count belongs to: IPv4 as is, IPv6 as its /64 network."""
    try:
        address = ipaddress.ip_address((source_address or "").strip())
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass(frozen=True)
class Admission:
    """An attempt that was counted and may check its password."""

    address_key: str
    account_key: str | None
    is_last: bool  # the last attempt the address has in this window

    def failed(self) -> None:
        """The password was wrong. The attempt that used the address's last one is told so."""
        if self.is_last:
            raise TooManyLoginAttempts()

    def succeeded(self) -> None:
        """The password was right: the address starts afresh, and the account's count forgets
        this attempt."""
        with contextlib.suppress(DeleteError):
            LoginAttempts(self.address_key).delete()
        if self.account_key:
            with contextlib.suppress(UpdateError):
                LoginAttempts(self.account_key).update(
                    actions=[LoginAttempts.attempts.add(-1)], condition=LoginAttempts.key.exists())


def _count(key: str, limit: int, expires_at: datetime) -> int:
    """Count one more attempt under `key` unless `limit` are counted already; the new count."""
    item = LoginAttempts(key)
    try:
        item.update(
            actions=[LoginAttempts.attempts.add(1), LoginAttempts.expires_at.set(expires_at)],
            condition=LoginAttempts.attempts.does_not_exist() | (LoginAttempts.attempts < limit),
        )
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            raise TooManyLoginAttempts() from None
        raise
    return int(item.attempts)


def admit(account: str, source_address: str | None) -> Admission:
    """Count an attempt to log in to `account` from `source_address`, or refuse it (401
    `too_many_failed_login_attempts`) when either count is at its limit."""
    window_seconds = max(settings.login_lockout_seconds, 1)
    window = int(_now() // window_seconds)
    expires_at = datetime.fromtimestamp((window + 1) * window_seconds, UTC)
    address_key = f"{account}|{address_scope(source_address)}|{window}"
    is_last = _count(address_key, settings.login_failure_limit, expires_at) >= settings.login_failure_limit
    account_key = None
    if settings.login_failure_limit_per_account > 0:
        account_key = f"{account}|{EVERYWHERE}|{window}"
        _count(account_key, settings.login_failure_limit_per_account, expires_at)
    return Admission(address_key, account_key, is_last)
