"""What every table shares: its name prefix, one DynamoDB connection, on-demand billing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

from pynamodb.attributes import Attribute
from pynamodb.connection import Connection, TableConnection
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.config import settings

BATCH_GET_LIMIT = 100  # keys per BatchGetItem request
BATCH_WRITE_LIMIT = 25  # items per BatchWriteItem request
TRANSACTION_LIMIT = 100  # items per TransactWriteItems
T = TypeVar("T", bound="Table")
S = TypeVar("S")


def in_chunks(items: Sequence[S], size: int) -> Iterator[Sequence[S]]:
    """`items` cut into pieces of at most `size`: one request or transaction each."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


@cache
def _connection_to(region: str, host: str | None) -> Connection:
    return Connection(region=region, host=host)


def shared_connection() -> Connection:
    """One DynamoDB connection (one botocore client) for every table: PynamoDB would otherwise
    build a session per model and parse the DynamoDB service model again for each (~0.1 s
    apiece on every Lambda cold start)."""
    return _connection_to(settings.region, settings.aws_endpoint_url)


def utcnow() -> datetime:
    return datetime.now(UTC)


class _TableNamed(type):
    """Resolves `Meta.table_name` from the settings when a table is used, not at import."""

    @property
    def table_name(cls) -> str:
        return settings.table_prefix + cls.table


class TableMeta(metaclass=_TableNamed):
    """Base of every model's `Meta`; subclasses set `table`, the name without the prefix."""

    table: str
    billing_mode = "PAY_PER_REQUEST"


class Table(Model):
    """Base of every model: all of them talk to DynamoDB through `shared_connection()`."""

    @classmethod
    def _get_connection(cls) -> TableConnection:
        table = super()._get_connection()
        shared = shared_connection()
        if table.connection is not shared:
            with contextlib.suppress(ValueError):  # the schema is known to it already
                shared.add_meta_table(table.get_meta_table())
            table.connection = shared
        return table


class Transaction:
    """A DynamoDB write transaction whose items carry labels, so that a cancelled transaction
    tells which conditions failed (PynamoDB sends checks, deletes, puts, then updates)."""

    def __init__(self) -> None:
        self._write = TransactWrite(connection=shared_connection())
        self._labels: dict[str, list[str | None]] = {
            "check": [], "delete": [], "put": [], "update": []
        }

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._write.__exit__(*exc_info)

    def commit(self) -> None:
        self._write.__exit__(None, None, None)

    def check(self, model_cls, hash_key, range_key=None, *, condition, label=None) -> None:
        self._write.condition_check(model_cls, hash_key, range_key, condition=condition)
        self._labels["check"].append(label)

    def delete(self, model, condition=None, *, label=None) -> None:
        self._write.delete(model, condition=condition)
        self._labels["delete"].append(label)

    def save(self, model, condition=None, *, label=None) -> None:
        self._write.save(model, condition=condition)
        self._labels["put"].append(label)

    def update(self, model, actions, condition=None, *, label=None) -> None:
        self._write.update(model, actions=actions, condition=condition)
        self._labels["update"].append(label)

    @staticmethod
    def conflicted(error: TransactWriteError) -> bool:
        """True when another transaction touched one of the items at the same time (retry)."""
        reasons = error.cancellation_reasons or []
        return any(reason and reason.code == "TransactionConflict" for reason in reasons)

    def failed(self, error: TransactWriteError) -> set[str | None]:
        """The labels of the items whose condition check failed."""
        order = [label for kind in ("check", "delete", "put", "update") for label in self._labels[kind]]
        reasons = error.cancellation_reasons or []
        return {
            order[i] for i, reason in enumerate(reasons)
            if reason and reason.code == "ConditionalCheckFailed"
        }


@contextlib.contextmanager
def transaction(errors: dict[str, Exception]) -> Iterator[Transaction]:
    """A transaction committed at the end of the block; when it is cancelled because the
    condition of an item labelled with a key of `errors` failed, that error is raised (the first
    in `errors` order), otherwise the original one."""
    tx = Transaction()
    try:
        with tx:
            yield tx
    except TransactWriteError as exc:
        failed = tx.failed(exc)
        for label, error in errors.items():
            if label in failed:
                raise error from None
        raise


def save_new(item: Model, key: Attribute, already_exists: Exception) -> None:
    """Save an item that must not exist yet (`key` is its hash key attribute); raise
    `already_exists` if it does."""
    try:
        item.save(condition=key.does_not_exist())
    except PutError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            raise already_exists from None
        raise


Key = tuple  # (model, hash key) or (model, hash key, range key)


class Fetched:
    """Items read by `get_many`, found again by model and key; absent items are None."""

    def __init__(self) -> None:
        self._items: dict[tuple, Table] = {}

    def add(self, item: Table) -> None:
        self._items[_key_of(item)] = item

    def get(self, model: type[T], hash_key: Any, range_key: Any = None) -> T | None:
        return self._items.get((model, hash_key, range_key))  # type: ignore[return-value]

    def all(self, model: type[T]) -> list[T]:
        return [item for (kind, *_), item in self._items.items() if kind is model]


def _key_of(item: Table) -> tuple:
    model = type(item)
    range_attribute = model._range_key_attribute()
    range_key = getattr(item, range_attribute.attr_name) if range_attribute else None
    return (model, getattr(item, model._hash_key_attribute().attr_name), range_key)


def _serialized_key(model: type[Table], hash_key: Any, range_key: Any) -> dict[str, Any]:
    attributes = [(model._hash_key_attribute(), hash_key)]
    if model._range_key_attribute() is not None:
        attributes.append((model._range_key_attribute(), range_key))
    return {attribute.attr_name: {attribute.attr_type: attribute.serialize(value)}
            for attribute, value in attributes}


def get_many(keys: Iterable[Key], consistent_read: bool = True) -> Fetched:
    """Read items of several tables in one BatchGetItem (per 100 keys), consistently by default:
    what decides a permission is read in one round trip, however many tables it spans."""
    wanted = list(dict.fromkeys((model, hash_key, rest[0] if rest else None)
                                for model, hash_key, *rest in keys))
    fetched = Fetched()
    client = shared_connection().client
    for start in range(0, len(wanted), BATCH_GET_LIMIT):
        models: dict[str, type[Table]] = {}
        request: dict[str, Any] = {}
        for model, hash_key, range_key in wanted[start:start + BATCH_GET_LIMIT]:
            models[model.Meta.table_name] = model
            table = request.setdefault(model.Meta.table_name,
                                       {"Keys": [], "ConsistentRead": consistent_read})
            table["Keys"].append(_serialized_key(model, hash_key, range_key))
        while request:
            response = client.batch_get_item(RequestItems=request)
            for table_name, items in response.get("Responses", {}).items():
                for raw in items:
                    fetched.add(models[table_name].from_raw_data(raw))
            request = response.get("UnprocessedKeys") or {}
    return fetched
