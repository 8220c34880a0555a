from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection

from chalicelib.models.base import Table, TableMeta, utcnow


class DeltaStatus(StrEnum):
    """What became of a delta; the API shows each as `STATUS_<NAME>` (the only values QField
    accepts)."""

    PENDING = "pending"
    STARTED = "started"  # shown as STATUS_BUSY
    APPLIED = "applied"
    CONFLICT = "conflict"
    NOT_APPLIED = "not_applied"
    ERROR = "error"
    IGNORED = "ignored"
    UNPERMITTED = "unpermitted"


class DeltasInOrder(GlobalSecondaryIndex):
    """A project's deltas in upload order: `GET deltas/<project>/`."""

    class Meta:
        index_name = "in-order"
        projection = AllProjection()

    project_id = UnicodeAttribute(hash_key=True)
    seq = UnicodeAttribute(range_key=True)


class DeltasOfFile(GlobalSecondaryIndex):
    """One deltafile's deltas: `GET deltas/<project>/<deltafile>/`, which QField polls."""

    class Meta:
        index_name = "by-deltafile"
        projection = AllProjection()

    deltafile_id = UnicodeAttribute(hash_key=True)
    seq = UnicodeAttribute(range_key=True)


class PendingDeltas(GlobalSecondaryIndex):
    """Sparse: only pending deltas carry `pending_project_id`. What the next delta_apply job of
    a project takes, in upload order. Keys only: an index lags behind the table, so the job reads
    the deltas themselves, consistently, before it takes them."""

    class Meta:
        index_name = "pending"
        projection = KeysOnlyProjection()

    pending_project_id = UnicodeAttribute(hash_key=True)
    seq = UnicodeAttribute(range_key=True)


class Delta(Table):
    """One edit from the field, stored as uploaded (`content`), and what became of it."""

    class Meta(TableMeta):
        table = "deltas"

    project_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)  # the delta's uuid
    # Upload order: `<upload time>#<deltafile id>#<index in the file>`.
    seq = UnicodeAttribute()
    deltafile_id = UnicodeAttribute()
    client_id = UnicodeAttribute()
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute(default=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)
    status = UnicodeAttribute(default=DeltaStatus.PENDING)
    pending_project_id = UnicodeAttribute(null=True)
    job_id = UnicodeAttribute(null=True)  # the delta_apply job that took it
    # The delta as uploaded, and the worker's report of the last attempt, as the JSON text they
    # are stored as: the lists put that text into their answers unparsed, so whatever a delta
    # holds can be listed. `content` and `feedback` are the values.
    content_json = UnicodeAttribute(attr_name="content")
    feedback_json = UnicodeAttribute(attr_name="feedback", null=True)
    modified_pk = UnicodeAttribute(null=True)

    in_order = DeltasInOrder()
    of_file = DeltasOfFile()
    pending = PendingDeltas()

    @property
    def content(self) -> dict[str, Any]:
        return json.loads(self.content_json)

    @property
    def feedback(self) -> Any:
        return None if self.feedback_json is None else json.loads(self.feedback_json)


def client_key(delta: dict[str, Any]) -> str:
    """How a client names a feature it created offline (ClientFeaturePk's sort key)."""
    return f"{delta.get('clientId')}__{delta.get('localLayerId')}__{delta.get('localPk')}"


class ClientFeaturePk(Table):
    """The server primary key of a feature a client created offline, keyed
    `<clientId>__<localLayerId>__<localPk>`: later patches and deletes of that client find it."""

    class Meta(TableMeta):
        table = "delta-client-pks"

    project_id = UnicodeAttribute(hash_key=True)
    client_key = UnicodeAttribute(range_key=True)
    pk = UnicodeAttribute()
