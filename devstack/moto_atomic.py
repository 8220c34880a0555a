"""Makes moto's DynamoDB operations atomic, as they are in AWS.

moto checks a condition and then writes, and applies a transaction item by item, without any
lock; concurrent requests (a threaded server, threads in a test) can interleave between the two
and both "win" a conditional write that DynamoDB lets only one win. One lock around every
operation of the DynamoDB backend restores DynamoDB's guarantee. Used by the tests and by the
local stack's AWS stand-in; AWS itself needs nothing of the kind.
"""

from __future__ import annotations

import functools
import threading

_LOCK = threading.RLock()


def _atomic(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    locked.__qfc_atomic__ = True
    return locked


def make_dynamodb_atomic() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name, member in list(vars(DynamoDBBackend).items()):
        if callable(member) and not name.startswith("_") and not getattr(member, "__qfc_atomic__", False):
            setattr(DynamoDBBackend, name, _atomic(member))
