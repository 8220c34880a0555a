"""The delta model and its feedback items: plain Python, no QGIS."""

from __future__ import annotations

import pytest

from job_containers.cores.delta_format import (
    APPLIED,
    APPLY_FAILED,
    CONFLICT,
    UNKNOWN_ERROR,
    Delta,
    DeltaConflict,
    DeltaError,
    Outcome,
)

RAW = {
    "uuid": "d1",
    "clientId": "c1",
    "localLayerId": "points_local",
    "sourceLayerId": "points_source",
    "localPk": "7",
    "sourcePk": "0",
    "method": "patch",
    "old": {"attributes": {"int": 1}},
    "new": {"attributes": {"int": 2}},
}


def test_a_patch_targets_the_pk_the_server_gave_the_clients_feature():
    delta = Delta.parse(3, RAW, {"c1__points_local__7": "1000"})
    assert (delta.index, delta.uuid, delta.method, delta.layer_id, delta.target_pk) == (
        3, "d1", "patch", "points_source", "1000"
    )
    assert Delta.parse(3, RAW, {}).target_pk == "0"


def test_a_create_keeps_the_clients_source_pk():
    assert Delta.parse(0, {**RAW, "method": "create"}, {"c1__points_local__7": "1000"}).target_pk == "0"


def test_an_empty_source_layer_id_falls_back_to_the_local_one():
    assert Delta.parse(0, {**RAW, "sourceLayerId": ""}, {}).layer_id == "points_local"


def test_an_unknown_method_is_a_delta_error():
    with pytest.raises(DeltaError, match='Unknown delta method "upsert"'):
        Delta.parse(0, {**RAW, "method": "upsert"}, {})


def test_missing_old_and_new_are_empty():
    delta = Delta.parse(0, {key: value for key, value in RAW.items() if key not in ("old", "new")}, {})
    assert (delta.old_attributes, delta.new_attributes) == ({}, {})


def test_feedback_of_an_applied_delta():
    outcome = Outcome.of_delta(Delta.parse(2, RAW, {}))
    outcome.modified_pk = 1
    item = outcome.feedback()
    assert (item["delta_id"], item["delta_index"], item["method"], item["layer_id"]) == (
        "d1", 2, "patch", "points_source"
    )
    assert (item["feature_pk"], item["modified_pk"], item["status"]) == ("0", 1, APPLIED)
    assert (item["e_type"], item["conflicts"], item["provider_errors"]) == (None, None, None)


@pytest.mark.parametrize(
    ("error", "status", "e_type", "conflicts", "provider_errors"),
    [
        (DeltaConflict(["a conflict"]), CONFLICT, "CONFLICT", ["a conflict"], None),
        (DeltaError("no such layer", ["said no"]), APPLY_FAILED, "ERROR", None, ["said no"]),
        (KeyError("boom"), UNKNOWN_ERROR, "ERROR", None, None),
    ],
)
def test_a_failure_maps_to_its_status(error, status, e_type, conflicts, provider_errors):
    outcome = Outcome.of(0, RAW)
    outcome.modified_pk = 5
    outcome.fail(error)
    item = outcome.feedback()
    assert (item["status"], item["e_type"], item["conflicts"], item["provider_errors"]) == (
        status, e_type, conflicts, provider_errors
    )
    assert item["modified_pk"] is None


def test_the_outcome_of_a_malformed_delta_still_has_an_index():
    item = Outcome.of(4, "not a delta").feedback()
    assert (item["delta_index"], item["delta_id"], item["layer_id"]) == (4, None, None)
