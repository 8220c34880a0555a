from __future__ import annotations

from pynamodb.attributes import TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib.models.base import Table, TableMeta, utcnow


class TokensByUser(GlobalSecondaryIndex):
    """A user's tokens: logout revokes them all; a new QField login replaces the old one."""

    class Meta:
        index_name = "by-user"
        projection = AllProjection()

    username_key = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class AuthToken(Table):
    """An API token. Only the SHA-256 of the key is stored; the key is shown once, at login."""

    class Meta(TableMeta):
        table = "auth-tokens"

    token_hash = UnicodeAttribute(hash_key=True)
    username_key = UnicodeAttribute()
    client_type = UnicodeAttribute(default="unknown")
    user_agent = UnicodeAttribute(default="")
    created_at = UTCDateTimeAttribute(default=utcnow)
    expires_at = UTCDateTimeAttribute()
    last_used_at = UTCDateTimeAttribute(null=True)
    # DynamoDB's TTL removes expired tokens some time after `expires_at`; reads still check it.
    purge_at = TTLAttribute()

    by_user = TokensByUser()
