"""The deltas QField uploads (deltafile format "1.0"), and what applying each one reports.

Every delta gets one feedback item in QFieldCloud's shape, with one of four statuses:
`status_applied`; `status_conflict` (the feature changed on the server since the client read it,
and conflicts are not overwritten); `status_apply_failed` (a failure the user can act on: unknown
layer, feature not found, a value the layer refuses...); `status_unknown_error` (an unexpected
exception while applying this delta). The API maps them to applied / conflict / not_applied / error.

No QGIS here: this module only reads the delta dicts and shapes the feedback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

APPLIED = "status_applied"
CONFLICT = "status_conflict"
APPLY_FAILED = "status_apply_failed"
UNKNOWN_ERROR = "status_unknown_error"

METHODS = ("create", "patch", "delete")
APPLIED_MESSAGE = "Successfully applied delta!"


class DeltaError(Exception):
    """The delta cannot be applied, for a reason the user can understand and act on."""

    def __init__(self, message: str, provider_errors: list[str] | None = None):
        super().__init__(message)
        self.provider_errors = provider_errors or None


class DeltaConflict(Exception):
    """The feature on the server no longer matches the delta's `old` values."""

    def __init__(self, conflicts: list[str]):
        super().__init__("There are conflicts with the already existing feature!")
        self.conflicts = conflicts


@dataclass(frozen=True)
class Delta:
    index: int
    uuid: str | None
    method: str
    layer_id: str
    # The PK value of the feature to patch or delete: the one the server gave a feature this client
    # created earlier (`clientPks`), else the client's `sourcePk`. For a create, the client's guess.
    target_pk: str
    old: dict[str, Any]
    new: dict[str, Any]

    @classmethod
    def parse(cls, index: int, raw: dict[str, Any], client_pks: dict[str, str]) -> Delta:
        method = raw.get("method")
        if method not in METHODS:
            raise DeltaError(f'Unknown delta method "{method}"')
        source_pk = str(raw.get("sourcePk") or "")
        client_key = f'{raw.get("clientId")}__{raw.get("localLayerId")}__{raw.get("localPk")}'
        target_pk = source_pk if method == "create" else str(client_pks.get(client_key, source_pk))
        return cls(
            index=index,
            uuid=raw.get("uuid"),
            method=method,
            layer_id=layer_id_of(raw),
            target_pk=target_pk,
            old=raw.get("old") or {},
            new=raw.get("new") or {},
        )

    @property
    def old_attributes(self) -> dict[str, Any]:
        return self.old.get("attributes") or {}

    @property
    def new_attributes(self) -> dict[str, Any]:
        return self.new.get("attributes") or {}


def layer_id_of(raw: dict[str, Any]) -> str:
    """QField sometimes leaves `sourceLayerId` empty; QGIS offline editing keeps layer ids, so the
    packaged layer's `localLayerId` names the same layer."""
    return raw.get("sourceLayerId") or raw.get("localLayerId") or ""


@dataclass
class Outcome:
    """What applying one delta did; `feedback()` is the item the API stores as `last_feedback`."""

    delta_index: int
    delta_id: str | None
    method: str | None
    layer_id: str | None
    feature_pk: Any
    modified_pk: Any = None
    status: str = APPLIED
    msg: str = APPLIED_MESSAGE
    e_type: str | None = None
    conflicts: list[str] | None = None
    provider_errors: list[str] | None = None

    @classmethod
    def of(cls, index: int, raw: Any) -> Outcome:
        """The outcome of a delta as uploaded, before knowing whether it is well-formed."""
        raw = raw if isinstance(raw, dict) else {}
        return cls(
            delta_index=index,
            delta_id=raw.get("uuid"),
            method=raw.get("method"),
            layer_id=layer_id_of(raw) or None,
            feature_pk=raw.get("sourcePk"),
        )

    @classmethod
    def of_delta(cls, delta: Delta) -> Outcome:
        return cls(delta.index, delta.uuid, delta.method, delta.layer_id, delta.target_pk)

    def fail(self, error: BaseException) -> None:
        self.modified_pk = None
        self.provider_errors = None
        if isinstance(error, DeltaConflict):
            self.status, self.e_type, self.conflicts = CONFLICT, "CONFLICT", error.conflicts
            self.msg = str(error)
        elif isinstance(error, DeltaError):
            self.status, self.e_type, self.conflicts = APPLY_FAILED, "ERROR", None
            self.msg, self.provider_errors = str(error), error.provider_errors
        else:
            self.status, self.e_type, self.conflicts = UNKNOWN_ERROR, "ERROR", None
            self.msg = f"{type(error).__name__}: {error}"

    def feedback(self) -> dict[str, Any]:
        return {
            "delta_id": self.delta_id,
            "delta_index": self.delta_index,
            "method": self.method,
            "layer_id": self.layer_id,
            "feature_pk": self.feature_pk,
            "modified_pk": self.modified_pk,
            "status": self.status,
            "msg": self.msg,
            "e_type": self.e_type,
            "conflicts": self.conflicts,
            "provider_errors": self.provider_errors,
        }
