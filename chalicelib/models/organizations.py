"""Organizations' memberships and teams. The organization itself is a `users` item
(`account_type` ORGANIZATION), and so is each team's name claim (`@<org>/<team>`, TEAM)."""

from __future__ import annotations

from enum import StrEnum

from pynamodb.attributes import BooleanAttribute, UnicodeAttribute, UnicodeSetAttribute, UTCDateTimeAttribute
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection

from chalicelib.models.base import Table, TableMeta, utcnow


class MemberRole(StrEnum):
    """A person's role in an organization. `owner` is the organization's one owner: stored as a
    membership so that a user's organizations and roles come from one Query, never listed as a
    member (as QFieldCloud shows organizations: docs/api.md, "Endpoints")."""

    OWNER = "owner"
    ADMIN = "admin"
    CREATOR = "creator"
    MEMBER = "member"


class MembershipsByMember(GlobalSecondaryIndex):
    """The organizations a user belongs to (keys only; the items are then read consistently):
    `GET projects/`, `GET users/<me>/organizations/`, removing a member."""

    class Meta:
        index_name = "by-member"
        projection = KeysOnlyProjection()

    member_key = UnicodeAttribute(hash_key=True)
    organization_key = UnicodeAttribute(range_key=True)


class Membership(Table):
    """A person in an organization. `team_ids` are the organization's teams the person is in,
    kept here (in the same transaction as the team's member list) so that one read of this item
    gives every tie between the person and the organization's projects."""

    class Meta(TableMeta):
        table = "memberships"

    organization_key = UnicodeAttribute(hash_key=True)
    member_key = UnicodeAttribute(range_key=True)
    organization = UnicodeAttribute()
    member = UnicodeAttribute()
    role = UnicodeAttribute(default=MemberRole.MEMBER)
    is_public = BooleanAttribute(default=False)
    team_ids = UnicodeSetAttribute(null=True)
    created_at = UTCDateTimeAttribute(default=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)

    by_member = MembershipsByMember()


class Team(Table):
    """A team of an organization. Its id never changes (a rename changes `name` and the name
    claim only), so memberships and collaborator rows refer to the id. `members` holds the
    members' usernames (no empty sets in DynamoDB: None when there are none)."""

    class Meta(TableMeta):
        table = "teams"

    organization_key = UnicodeAttribute(hash_key=True)
    team_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    members = UnicodeSetAttribute(null=True)
    created_at = UTCDateTimeAttribute(default=utcnow)

    @property
    def member_names(self) -> list[str]:
        return sorted(self.members or (), key=str.casefold)
