from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection

from chalicelib.models.base import Table, TableMeta, utcnow

PERSON, ORGANIZATION, TEAM = 1, 2, 3


class UserByEmail(GlobalSecondaryIndex):
    """Login by email (`auth/login/` with an `email` field)."""

    class Meta:
        index_name = "by-email"
        projection = AllProjection()

    email_key = UnicodeAttribute(hash_key=True)


class UserDirectory(GlobalSecondaryIndex):
    """Persons and organizations by the first character of their username, then by username:
    `GET users/?q=<prefix>` is one Query of one partition (sparse: teams are not in it)."""

    class Meta:
        index_name = "directory"
        projection = IncludeProjection(["username", "account_type", "first_name", "last_name"])

    directory_partition = UnicodeAttribute(hash_key=True)
    username_key = UnicodeAttribute(range_key=True)


def directory_partition_of(username_key: str) -> str:
    return username_key[:1]


class User(Table):
    """An account: a person, an organization, or a team's name claim; they share the namespace
    (persons and organizations by their username, teams as `@<organization>/<team>`).

    `username_key` is the lowercased username: usernames are unique case-insensitively.
    `storage_used_bytes` counts every kept version of every file of the account's projects.
    The plan figures (`max_*`, `storage_quota_bytes`) override the server's defaults when set.
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
    # A pending password reset by e-mail: the SHA-256 of the link's secret, and until when the
    # link works (services/passwords.py). Removed when used.
    password_reset_hash = UnicodeAttribute(null=True)
    password_reset_expires_at = UTCDateTimeAttribute(null=True)
    storage_used_bytes = NumberAttribute(default=0)
    storage_quota_bytes = NumberAttribute(null=True)
    max_premium_collaborators_per_private_project = NumberAttribute(null=True)
    directory_partition = UnicodeAttribute(null=True)
    # Organizations: the owner (also a membership with role `owner`), the number of members
    # (the owner not counted), the plan's member limit, and the role every member gets on
    # every project of the organization (None: only through collaborators and teams).
    organization_owner = UnicodeAttribute(null=True)
    members_count = NumberAttribute(default=0)
    max_organization_members = NumberAttribute(null=True)
    default_project_role_for_members = UnicodeAttribute(null=True)
    # A team's name claim: which organization and which team (`teams` item) it names.
    organization_key = UnicodeAttribute(null=True)
    team_id = UnicodeAttribute(null=True)

    by_email = UserByEmail()
    by_directory = UserDirectory()

    @property
    def is_person(self) -> bool:
        return self.account_type == PERSON

    @property
    def is_organization(self) -> bool:
        return self.account_type == ORGANIZATION

    @property
    def is_team(self) -> bool:
        return self.account_type == TEAM

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
