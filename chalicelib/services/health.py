"""What `status/` reports: real checks of DynamoDB and S3."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from chalicelib.adapters import storage
from chalicelib.models import User


def _database_is_reachable() -> bool:
    try:
        User.count("status-probe", limit=1)  # a real Query on a key that needs no item
    except (PynamoDBException, ClientError, BotoCoreError):
        return False
    return True


@dataclass(frozen=True)
class Health:
    database_ok: bool
    storage_ok: bool


def check() -> Health:
    return Health(database_ok=_database_is_reachable(), storage_ok=storage.bucket_is_reachable())
