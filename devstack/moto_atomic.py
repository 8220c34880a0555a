"""Makes moto's DynamoDB behave as DynamoDB does where the local stack and the tests rely on it.

- Atomic: moto checks a condition and then writes, and applies a transaction item by item,
  without any lock; concurrent requests (a threaded server, threads in a test) can interleave
  between the two and both "win" a conditional write that DynamoDB lets only one win. One lock
  around every operation of the DynamoDB backend restores DynamoDB's guarantee.
- Transactions cost what they touch: moto deep-copies a whole table for every item of a
  transaction, to roll back on failure, so a transaction of 100 items on a table of 10,000
  copies a million items. Here only the items the transaction touches are kept, and restored.

- Item responses are written as they are: moto serializes every response field by field against
  the service model, which makes reading 1,000 items take seconds; DynamoDB's item operations
  already hold wire-ready JSON, so they are dumped directly.

Used by the tests and by the local stack's AWS stand-in; AWS itself needs nothing of the kind.
"""

from __future__ import annotations

import functools
import json
import threading

_LOCK = threading.RLock()


def _atomic(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    locked.__qfc_atomic__ = True
    return locked


class _NoTableCopy:
    """Stands in for the `copy` module inside moto's transaction, where it only copies tables."""

    @staticmethod
    def deepcopy(table):
        return table


def _key_of(backend, operation: dict) -> tuple[str, dict]:
    table_name = operation["TableName"]
    if "Item" not in operation:
        return table_name, operation["Key"]
    table = backend.get_table(table_name)
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return table_name, {name: operation["Item"][name] for name in names}


def _item_scoped(transact_write_items):
    @functools.wraps(transact_write_items)
    def transact(self, transact_items):
        import moto.dynamodb.models as models

        before = []
        for entry in transact_items:
            (operation,) = entry.values()
            try:
                table_name, key = _key_of(self, operation)
                current = self.get_item(table_name, key)
            except Exception:  # moto's own validation reports it below
                continue
            before.append((table_name, key, current.to_json()["Attributes"] if current else None))
        real_copy, models.copy = models.copy, _NoTableCopy
        try:
            return transact_write_items(self, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(before):
                if attributes is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attributes)
            raise
        finally:
            models.copy = real_copy

    return transact


# Operations whose results are DynamoDB JSON already (items, keys, counts).
_ITEM_OPERATIONS = frozenset({
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "BatchGetItem", "BatchWriteItem",
    "TransactWriteItems", "TransactGetItems",
})


def _dumped_directly(execute_result):
    @functools.wraps(execute_result)
    def execute(self, context):
        if (context.service_model.service_name == "dynamodb"
                and context.operation_model.name in _ITEM_OPERATIONS and isinstance(self.result, dict)):
            try:
                body = json.dumps(self.result, separators=(",", ":"))
            except TypeError:
                return execute_result(self, context)
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return execute_result(self, context)

    execute.__qfc_direct__ = True
    return execute


def make_dynamodb_atomic() -> None:
    from moto.core.responses import ActionResult
    from moto.dynamodb.models import DynamoDBBackend

    if not getattr(ActionResult.execute_result, "__qfc_direct__", False):
        ActionResult.execute_result = _dumped_directly(ActionResult.execute_result)

    if not getattr(DynamoDBBackend.transact_write_items, "__qfc_item_scoped__", False):
        DynamoDBBackend.transact_write_items = _item_scoped(DynamoDBBackend.transact_write_items)
        DynamoDBBackend.transact_write_items.__qfc_item_scoped__ = True

    for name, member in list(vars(DynamoDBBackend).items()):
        if callable(member) and not name.startswith("_") and not getattr(member, "__qfc_atomic__", False):
            setattr(DynamoDBBackend, name, _atomic(member))
