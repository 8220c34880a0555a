"""One partition of a table or index, read in key order: what the paged lists are made of.

A page is one Query with `Limit` (another only past DynamoDB's 1 MB a response, or where a filter
drops items), starting after the key of the item before it. Whole lists are read Query page by
Query page, one page of items in memory at a time, never sorted here. Where a page starts is
the key of the last item of the page before (what a cursor carries); a client that knows only
its offset gets the key by counting (`Select=COUNT` Queries: nothing but counts on the wire, and
still one call per MB of items skipped). `total` comes from a counter kept with the items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pynamodb.expressions.condition import Condition
from pynamodb.indexes import Index
from pynamodb.pagination import ResultIterator

from .base import Table

T = TypeVar("T")
Key = dict[str, dict[str, Any]]  # a DynamoDB key, as in `ExclusiveStartKey`


class _End:
    """The start "key" past the last item: an offset beyond the list."""


END = _End()


@dataclass(frozen=True)
class Listing(Generic[T]):
    """The items of `model` (or of its `index`) whose partition key is `partition`, in key order
    (`forward`) or reversed, optionally filtered. `total` is how many there are (None: not kept,
    counted when asked, for lists that stay small)."""

    model: type[Table]
    partition: str
    total: int | None
    index: Index | None = None
    forward: bool = True
    filter: Condition | None = None
    # What an item becomes: the model (default), or a lighter read-only shape of its raw item.
    reader: Callable[[dict[str, Any]], T] | None = None

    @property
    def identity(self) -> str:
        """What distinguishes this list from every other (the same identity, the same order)."""
        index = self.index.Meta.index_name if self.index is not None else ""
        return "|".join((self.model.Meta.table, index, self.partition, "asc" if self.forward else "desc",
                         str(self.filter) if self.filter is not None else ""))

    def _partition_attribute(self) -> str:
        keyed = self.index if self.index is not None else self.model
        return keyed._hash_key_attribute().attr_name

    def start_attributes(self) -> frozenset[str]:
        """The attributes of a start key besides the partition's (which the listing supplies)."""
        schemas = [self.model._get_schema()] + ([self.index._get_schema()] if self.index is not None else [])
        names = {key["AttributeName"] for schema in schemas for key in schema["key_schema"]}
        return frozenset(names - {self._partition_attribute()})

    def start_key(self, rest: Key) -> Key:
        """A start key from its attributes other than the partition's."""
        return {**rest, self._partition_attribute(): {"S": self.partition}}

    def without_partition(self, key: Key) -> Key:
        partition = self._partition_attribute()
        return {name: value for name, value in key.items() if name != partition}

    def _query_arguments(self) -> dict[str, Any]:
        return {
            "filter_condition": self.filter,
            "index_name": self.index.Meta.index_name if self.index is not None else None,
            "scan_index_forward": self.forward,
        }

    def _query(self, **arguments: Any) -> ResultIterator:
        results = self.model.query(self.partition, **arguments, **self._query_arguments())
        if self.reader is not None:
            results._map_fn = self.reader  # the raw items, as PynamoDB would hand them to the model
        return results

    def page(self, after: Key | None, limit: int) -> tuple[list[T], Key | None]:
        """Up to `limit` items following the key `after` (from the first without), and the key of
        the last one read (None when DynamoDB read to the end)."""
        results = self._query(limit=limit, last_evaluated_key=after)
        items = list(results)
        return items, results.last_evaluated_key

    def skip(self, count: int) -> Key | _End | None:
        """The key after which the item at position `count` follows (None for 0, END when the
        list is shorter), by counting: each Query returns only its count and last key."""
        connection = self.model._get_connection()
        start: Key | None = None
        remaining = count
        while remaining > 0:
            data = connection.query(self.partition, exclusive_start_key=start, limit=remaining,
                                    select="COUNT", **self._query_arguments())
            remaining -= int(data.get("Count", 0))
            start = data.get("LastEvaluatedKey")
            if start is None:  # read to the end: nothing follows
                return END
        return start

    def count(self) -> int:
        """How many items there are: `total`, or counted (Select=COUNT Queries)."""
        if self.total is not None:
            return self.total
        connection = self.model._get_connection()
        counted, start = 0, None
        while True:
            data = connection.query(self.partition, exclusive_start_key=start, select="COUNT",
                                    **self._query_arguments())
            counted += int(data.get("Count", 0))
            start = data.get("LastEvaluatedKey")
            if start is None:
                return counted

    def __iter__(self) -> Iterator[T]:
        """Every item, a Query page at a time."""
        return iter(self._query())
