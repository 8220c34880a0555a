"""One partition of a table or index, read in key order: what the paged lists are made of.

A page is one Query with `Limit` (another only past DynamoDB's 1 MB a response, or where a filter
drops items), starting after the key of the item before it. Whole lists are read Query page by
Query page, one page of items in memory at a time, never sorted here. Where a page starts is
the key of the last item of the page before (what a cursor carries); a client that knows only
its offset gets the key by counting (`Select=COUNT` Queries: nothing but counts on the wire, and
still one call per MB of items skipped). `total` comes from a counter kept with the items.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pynamodb.attributes import Attribute
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import Index
from pynamodb.pagination import ResultIterator

from chalicelib.models.base import Table

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
    # How many items of the partition the filter drops at most (an organization's owner row):
    # a page's Query asks for that many more, so that a page stays one Query.
    filtered_out_at_most: int = 0
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
        results = self._query(limit=limit, page_size=limit + self.filtered_out_at_most,
                              last_evaluated_key=after)
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


@dataclass(frozen=True)
class KeyRange(Generic[T]):
    """One partition of an index whose range key is a string unique in the partition, read in
    that key's order after a given key: a source of a `KeyOrdered` list."""

    model: type[Table]
    index: Index
    partition: str
    key: Attribute  # the index's range key, as an attribute of `model`

    def read(self, after: str | None, limit: int | None) -> tuple[list[T], bool]:
        """Up to `limit` items (one response, ≤ 1 MB, without) whose key follows `after`, and
        whether the partition may hold more."""
        data = self.model._get_connection().query(
            self.partition, range_key_condition=self.key > after if after is not None else None,
            index_name=self.index.Meta.index_name, limit=limit)
        items = [self.model.from_raw_data(item) for item in data.get("Items", [])]
        return items, data.get("LastEvaluatedKey") is not None


class KeyOrdered(ABC, Generic[T]):
    """A list in the order of a string key unique to each item (say, several `KeyRange`s merged),
    read a page at a time after the key of the item before: what its cursor holds. There is no
    counter: whether more follow is read with the page."""

    identity: str  # the same identity, the same list in the same order
    SKIP_BATCH = 1000

    @abstractmethod
    def page(self, after: str | None, limit: int) -> tuple[list[T], str | None, bool]:
        """Up to `limit` items following the key `after` (from the first without), the key of the
        last one, and whether more follow."""

    @abstractmethod
    def __iter__(self) -> Iterator[T]:
        """Every item, reading each source a response (≤ 1 MB) at a time."""

    def skip(self, count: int) -> tuple[str | None, int]:
        """The key after which the item at position `count` follows, by reading the items before
        it (cost O(count)), and how many items there were up to it (less than `count`: the list
        ends before)."""
        after, seen = None, 0
        while seen < count:
            items, last, more = self.page(after, min(count - seen, self.SKIP_BATCH))
            seen += len(items)
            after = last if items else after
            if not more:
                break
        return after, seen
