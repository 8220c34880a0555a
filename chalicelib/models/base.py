"""What every table shares: its name prefix, region, endpoint and on-demand billing."""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from ..config import settings


def utcnow() -> datetime:
    return datetime.now(UTC)


class TableMeta:
    """Base of every model's `Meta`; subclasses set `table_name` with `table_name_for`."""

    region = settings.region
    host = settings.aws_endpoint_url
    billing_mode = "PAY_PER_REQUEST"


def table_name_for(name: str) -> str:
    return settings.table_prefix + name


def transaction() -> TransactWrite:
    """A DynamoDB write transaction on the configured endpoint."""
    return TransactWrite(connection=Connection(region=settings.region, host=settings.aws_endpoint_url))


def failed_conditions(error: TransactWriteError) -> list[int]:
    """Positions (in the order the items were added) whose condition check failed."""
    reasons = error.cancellation_reasons or []
    return [i for i, reason in enumerate(reasons) if reason and reason.code == "ConditionalCheckFailed"]
