from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from .base import Table, TableMeta, utcnow

PERSON, ORGANIZATION, TEAM = 1, 2, 3


class UserByEmail(GlobalSecondaryIndex):
    """Login by email (`auth/login/` with an `email` field)."""

    class Meta:
        index_name = "by-email"
        projection = AllProjection()

    email_key = UnicodeAttribute(hash_key=True)


class User(Table):
    """An account: a person (later also organizations and teams, which share the namespace).

    `username_key` is the lowercased username: usernames are unique case-insensitively.
    `storage_used_bytes` counts every kept version of every file of the account's projects.
    """

    class Meta(TableMeta):
        table = "users"

    username_key = UnicodeAttribute(hash_key=True)
    username = UnicodeAttribute()
    account_type = NumberAttribute(default=PERSON)
    email = UnicodeAttribute(default="")
    email_key = UnicodeAttribute(null=True)
    first_name = UnicodeAttribute(default="")
    last_name = UnicodeAttribute(default="")
    password_hash = UnicodeAttribute(null=True)
    is_staff = BooleanAttribute(default=False)
    is_active = BooleanAttribute(default=True)
    date_joined = UTCDateTimeAttribute(default=utcnow)
    storage_used_bytes = NumberAttribute(default=0)
    storage_quota_bytes = NumberAttribute(null=True)

    by_email = UserByEmail()

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class LoginAttempts(Table):
    """Login attempts counted in a fixed window, per account and source address (`key` is
    `<account>|<address>|<window>`) and per account from everywhere (`<account>|*|<window>`).
    An attempt is counted before its password is checked; each item expires with its window."""

    class Meta(TableMeta):
        table = "login-attempts"

    key = UnicodeAttribute(hash_key=True)
    attempts = NumberAttribute(default=0)
    expires_at = TTLAttribute()
