"""What `status/` and `server/info/` report: real checks of DynamoDB and S3."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from . import storage
from .models import User


def _database_is_reachable() -> bool:
    try:
        User.count("status-probe", limit=1)  # a real Query on a key that needs no item
    except (PynamoDBException, ClientError, BotoCoreError):
        return False
    return True


def status() -> dict[str, Any]:
    return {
        "database": "ok" if _database_is_reachable() else "error",
        "storage": "ok" if storage.bucket_is_reachable() else "error",
        "status_page_url": None,
        "incident_message": None,
        "incident_timestamp_utc": None,
        "maintenance_message": None,
        "maintenance_start_timestamp_utc": None,
        "maintenance_end_timestamp_utc": None,
    }


def server_info() -> dict[str, Any]:
    return {
        "whitelabel": {"site_title": "QFieldCloud (serverless)", "logo_navbar": None,
                       "logo_main": None, "favicon": None},
        "auth_providers": [
            {"type": "credentials", "id": "credentials", "name": "Username / Password"}
        ],
        "signup_url": None,
    }
