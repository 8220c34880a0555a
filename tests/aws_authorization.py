"""What IAM authorizes for a DynamoDB request, as the service authorization reference for DynamoDB
lists it: the request's action on each table it names, a Query or Scan of an index on the
index's ARN, and a transaction as the item action of each of its items (there is no
`dynamodb:TransactWriteItems` action)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TRANSACTION_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                       "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


def dynamodb_authorizations(operation: str, parameters: dict[str, Any],
                            table_arn: Callable[[str], str]) -> list[tuple[str, str]]:
    """The (action, resource ARN) pairs one request needs; `table_arn` names a table's ARN."""
    if "TransactItems" in parameters:
        return [(f"dynamodb:{TRANSACTION_ACTIONS[kind]}", table_arn(item[kind]["TableName"]))
                for item in parameters["TransactItems"] for kind in item]
    if "RequestItems" in parameters:
        return [(f"dynamodb:{operation}", table_arn(name)) for name in parameters["RequestItems"]]
    if "TableName" in parameters:
        index = f"/index/{parameters['IndexName']}" if parameters.get("IndexName") else ""
        return [(f"dynamodb:{operation}", table_arn(parameters["TableName"]) + index)]
    return [(f"dynamodb:{operation}", "*")]
