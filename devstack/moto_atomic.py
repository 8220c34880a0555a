"""Makes moto's DynamoDB behave as DynamoDB does where the local stack and the tests rely on it.

- Atomic: moto checks a condition and then writes, and applies a transaction item by item,
  without any lock; concurrent requests (a threaded server, threads in a test) can interleave
  between the two and both "win" a conditional write that DynamoDB lets only one win. One lock
  around every operation of the DynamoDB backend restores DynamoDB's guarantee.
- Transactions cost what they touch: moto deep-copies a whole table for every item of a
  transaction, to roll back on failure, so a transaction of 100 items on a table of 10,000
  copies a million items. Here only the items the transaction touches are kept, and restored.

- Queries cost what they read: moto sorts every item of a table (by hash and range key, with
  slow comparisons) for every Query, and walks it to the start key. Here a Query takes only its
  partition's items (a table's from its hash map, an index's by one pass over plain values),
  sorts those by plain key values, keeps them sorted until the next write, and starts at the
  start key by bisection; what it returns is what moto's own Query returns.
- Item responses are written as they are: moto serializes every response field by field against
  the service model, which makes reading 1,000 items take seconds; DynamoDB's item operations
  already hold wire-ready JSON, so they are dumped directly.

Used by the tests and by the local stack's AWS stand-in; AWS itself needs nothing of the kind.
"""

from __future__ import annotations

import bisect
import copy
import functools
import json
import threading
from decimal import Decimal

_LOCK = threading.RLock()
# Counts the backend calls that may change items: a Query's sorted partition is reused while
# this has not moved (every backend call holds _LOCK, so none runs during a Query).
_WRITES = [0]
_READS = frozenset({
    "get_item", "query", "scan", "batch_get_item", "transact_get_items", "get_table",
    "get_keys_value", "get_table_keys_name", "get_schema", "describe_table", "list_tables",
    "describe_time_to_live", "describe_continuous_backups", "describe_endpoints", "describe_backup",
    "describe_export", "describe_import", "get_backup", "list_backups", "list_exports",
    "list_tags_of_resource", "iter_tagged_resources", "get_resource_policy",
    "default_vpc_endpoint_service",
})
_SORTED_PARTITIONS = 64  # kept per table


def _atomic(method, writes: bool = True):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _LOCK:
            if writes:
                _WRITES[0] += 1
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


def _plain(value) -> object:
    """A key attribute's value as Python orders it as DynamoDB does (S and N; B is not used)."""
    if value is None:
        return ()
    return Decimal(value.value) if value.type == "N" else value.value


def _plan(table, index_name, hash_key, hash_key_conditions, range_key_conditions, filter_kwargs):
    """(index, hash attribute, hash value, sort attributes) of a Query this module serves, or None
    for what it leaves to moto (legacy filters, multi-attribute keys, binary keys)."""
    if filter_kwargs or len(range_key_conditions or []) > 1 or len(hash_key_conditions or []) > 1:
        return None
    if index_name is None:
        if hash_key is None:
            return None
        return None, table.hash_key_attr, hash_key, [table.range_key_attr] if table.range_key_attr else []
    index = table.get_index(index_name)
    hashes = [key["AttributeName"] for key in index.schema if key["KeyType"] == "HASH"]
    ranges = [key["AttributeName"] for key in index.schema if key["KeyType"] == "RANGE"]
    if len(hashes) != 1 or len(ranges) > 1 or not hash_key_conditions:
        return None
    value = hash_key_conditions[0][1]
    table_keys = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    # moto orders an index without a range key by the table's range key first.
    first = ranges or table_keys[1:]
    return index, hashes[0], value, [*first, *table_keys]


def _candidates(table, index, hash_attr, value, ranges_needed) -> list:
    if index is None:
        found = table.items.get(value)
        if found is None:
            return []
        return list(found.values()) if table.range_key_attr else [found]
    matches = []
    wanted_type, wanted = value.type, value.value
    for stored in table.items.values():
        for item in (stored.values() if table.range_key_attr else (stored,)):
            attribute = item.attrs.get(hash_attr)
            if attribute is not None and attribute.type == wanted_type and attribute.value == wanted and all(
                    item.attrs.get(name) is not None for name in ranges_needed):
                matches.append(item)
    return matches


def _sorted_partition(table, index, index_name, hash_attr, value, order, index_ranges):
    """The partition's items sorted by their keys, their sort keys, and a cache of their sizes:
    sorted once, then reused until a write (None for binary keys, which moto sorts itself)."""
    cache = table.__dict__.setdefault("_qfc_sorted", {})
    name = (index_name, value.type, value.value)
    found = cache.get(name)
    if found is not None and found[0] == _WRITES[0]:
        return found[1:]
    items = _candidates(table, index, hash_attr, value, index_ranges)
    if any(item.attrs.get(key) is not None and item.attrs[key].type == "B"
           for item in items[:1] for key in order):
        return None

    def sort_key(item):
        return tuple(_plain(item.attrs.get(key)) for key in order)

    items.sort(key=sort_key)
    cache[name] = (_WRITES[0], items, [sort_key(item) for item in items], {})
    while len(cache) > _SORTED_PARTITIONS:
        cache.pop(next(iter(cache)))
    return cache[name][1:]


def _partition_scoped(query):
    @functools.wraps(query)
    def partition_query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                        scan_index_forward, projection_expressions, index_name=None,
                        consistent_read=False, filter_expression=None, hash_key_conditions=None,
                        range_key_conditions=None, **filter_kwargs):
        plan = _plan(self, index_name, hash_key, hash_key_conditions, range_key_conditions, filter_kwargs)
        everything = (hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                      scan_index_forward, projection_expressions)
        options = {"index_name": index_name, "consistent_read": consistent_read,
                   "filter_expression": filter_expression, "hash_key_conditions": hash_key_conditions,
                   "range_key_conditions": range_key_conditions, **filter_kwargs}
        if plan is None:
            return query(self, *everything, **options)
        index, hash_attr, value, order = plan
        if index is not None and index in (self.global_indexes or []) and consistent_read:
            return query(self, *everything, **options)  # moto's own error
        index_ranges = [key["AttributeName"] for key in index.schema if key["KeyType"] == "RANGE"] \
            if index is not None else []
        sorted_partition = _sorted_partition(self, index, index_name, hash_attr, value, order, index_ranges)
        if sorted_partition is None:
            return query(self, *everything, **options)
        items, keys, sizes = sorted_partition
        first, last, step = 0, len(items), 1
        if exclusive_start_key is not None:
            from moto.dynamodb.models.dynamo_type import DynamoType

            start = tuple(_plain(DynamoType(exclusive_start_key[name]) if name in exclusive_start_key
                                 else None) for name in order)
            if scan_index_forward is False:
                last = bisect.bisect_left(keys, start)
            else:
                first = bisect.bisect_right(keys, start)
        if scan_index_forward is False:
            first, last, step = last - 1, first - 1, -1
        range_attribute = (range_key_conditions[-1][0] if range_key_conditions
                           else index_ranges[0] if index_ranges else self.range_key_attr)
        results, size, scanned, last_key = [], 0, 0, None
        from moto.dynamodb.models.table import RESULT_SIZE_LIMIT

        for position in range(first, last, step):
            item = items[position]
            item_size = sizes.get(id(item))
            if item_size is None:
                item_size = sizes[id(item)] = item.size()
            if len(results) == limit or size + item_size > RESULT_SIZE_LIMIT:
                last_key = self._get_last_evaluated_key(results[-1], index_name)
                break
            if range_comparison and not (item.attrs.get(range_attribute) is not None and item.attrs[
                    range_attribute].compare(range_comparison, range_objs)):
                continue
            results.append(item)
            size += item_size
            scanned += 1
        results = copy.deepcopy(results)
        if index is not None:
            results = [index.project(item) for item in results]
        if filter_expression is not None:
            results = [item for item in results if filter_expression.expr(item)]
        if projection_expressions:
            results = [item.project(projection_expressions) for item in results]
        return results, scanned, last_key

    partition_query.__qfc_partition__ = True
    return partition_query


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
            # Only what the operation's answer declares, as moto's serialiser keeps (its result may
            # hold more, such as a delete's `ConsumedCapacityUnits`).
            declared = context.operation_model.output_shape.members
            try:
                body = json.dumps({key: value for key, value in self.result.items() if key in declared},
                                  separators=(",", ":"))
            except TypeError:
                return execute_result(self, context)
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return execute_result(self, context)

    execute.__qfc_direct__ = True
    return execute


def make_dynamodb_atomic() -> None:
    from moto.core.responses import ActionResult
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if not getattr(ActionResult.execute_result, "__qfc_direct__", False):
        ActionResult.execute_result = _dumped_directly(ActionResult.execute_result)

    if not getattr(Table.query, "__qfc_partition__", False):
        Table.query = _partition_scoped(Table.query)

    if not getattr(DynamoDBBackend.transact_write_items, "__qfc_item_scoped__", False):
        DynamoDBBackend.transact_write_items = _item_scoped(DynamoDBBackend.transact_write_items)
        DynamoDBBackend.transact_write_items.__qfc_item_scoped__ = True

    for name, member in list(vars(DynamoDBBackend).items()):
        if callable(member) and not name.startswith("_") and not getattr(member, "__qfc_atomic__", False):
            setattr(DynamoDBBackend, name, _atomic(member, writes=name not in _READS))
