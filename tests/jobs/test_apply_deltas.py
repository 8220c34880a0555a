"""The apply_deltas core with real QGIS, on copies of the reference server's delta test project.

Each test reads the edited files back with sqlite3 or GDAL's OGR, never with the code under test.
The expected values follow from the data: e.g. `nonspatial.csv` holds `col1=foo` where the deltas
expect `bar`, so those patches conflict and apply only because conflicts are overwritten.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from osgeo import gdal

from job_containers.cores.apply_deltas import apply_deltas
from job_containers.cores.delta_format import APPLIED, APPLY_FAILED, CONFLICT, UNKNOWN_ERROR
from tests import shared_data
from tests.jobs.conftest import copy_tree
from tests.jobs.delta_data import (
    FEEDBACK_KEYS,
    NONSPATIAL_CSV,
    POINTS_GEOJSON,
    POINTS_XY,
    POINTS_XYZ,
    POINTS_XYZM,
    POLYGONS,
    delta,
    load_deltas,
    properties,
    rows,
    statuses,
    wkt_by_fid,
)

ORIGINAL_POINTS = [(1, 1, 0.1, "str1"), (2, 2, 0.2, "str2"), (3, 3, 0.3, "str3")]

# GDAL before 3.6.3 (Debian bookworm has 3.6.2) writes an edited GeoJSON feature that has no "id"
# member, as QGIS adds them, as a new feature and keeps the old one (OSGeo/gdal#7258).
GDAL_DUPLICATES_EDITED_GEOJSON_FEATURES_WITHOUT_ID = int(gdal.VersionInfo()) < 3060300


@pytest.fixture
def project(qgis, testdata, tmp_path) -> Path:
    return copy_tree(testdata / "app" / "delta", tmp_path / "project")


@pytest.fixture
def deltafile(testdata):
    return lambda name: load_deltas(testdata / "app" / "delta" / "deltas" / name)


def run(project_dir: Path, deltas: list[dict], overwrite_conflicts: bool = True, client_pks=None,
        project_file: str = "project.qgs") -> list[dict]:
    feedback = apply_deltas(project_dir, project_file, deltas, client_pks, overwrite_conflicts)
    assert "error" not in feedback, feedback.get("error_stack")
    items = feedback["outputs"]["apply_deltas"]["delta_feedback"]
    assert [item["delta_index"] for item in items] == list(range(len(deltas)))
    assert all(set(item) == FEEDBACK_KEYS for item in items)
    return items


def points(project_dir: Path) -> list[tuple]:
    return rows(project_dir / "testdata.gpkg", "points_xy")


def client_key(raw: dict) -> str:
    return f'{raw["clientId"]}__{raw["localLayerId"]}__{raw["localPk"]}'


def test_feedback_is_a_workflow_with_one_item_per_delta(project, deltafile):
    deltas = deltafile("singlelayer_singledelta.json")

    feedback = apply_deltas(project, "project.qgs", deltas, None, False)

    assert (feedback["feedback_version"], feedback["workflow_id"]) == ("2.0", "apply_changes")
    assert [(step["id"], step["stage"]) for step in feedback["steps"]] == [
        ("start_qgis_app", 2), ("apply_deltas", 2)
    ]
    assert feedback["steps"][0]["returns"]["qgis_version"].startswith("3.")
    assert feedback["outputs"]["apply_deltas"]["delta_feedback"] == [{
        "delta_id": "9311eb96-bff8-4d5b-ab36-c314a007cfcd",
        "delta_index": 0,
        "method": "patch",
        "layer_id": POINTS_XY,
        "feature_pk": "1",
        "modified_pk": 1,
        "status": APPLIED,
        "msg": "Successfully applied delta!",
        "e_type": None,
        "conflicts": None,
        "provider_errors": None,
    }]
    assert points(project)[0] == (1, 666, 0.1, "str1")


@pytest.mark.parametrize(("name", "value"), [
    ("singlelayer_singledelta2.json", 666),
    ("singlelayer_singledelta3.json", 666),
    ("singlelayer_singledelta4.json", 666),
    ("singlelayer_singledelta5.json", 666),
    ("singlelayer_singledelta6.json", 666),
    ("singlelayer_singledelta_diff_content.json", 667),
    ("singlelayer_singledelta_project2.json", 666),
    ("singlelayer_singledelta_empty_source_layer_id.json", 666),
])
def test_single_patches(project, deltafile, name, value):
    items = run(project, deltafile(name), overwrite_conflicts=False)

    assert statuses(items) == [APPLIED]
    assert items[0]["layer_id"] == POINTS_XY
    assert points(project) == [(1, value, 0.1, "str1"), *ORIGINAL_POINTS[1:]]


def test_null_characters_stripped_by_the_api_leave_an_empty_string(project, deltafile):
    assert statuses(run(project, deltafile("singlelayer_singledelta_null.json"))) == [APPLIED]
    assert points(project) == [(1, 1, 0.1, ""), *ORIGINAL_POINTS[1:]]


def test_single_layer_multiple_deltas(project, deltafile):
    items = run(project, deltafile("singlelayer_multidelta.json"), overwrite_conflicts=False)

    assert statuses(items) == [APPLIED] * 3
    assert [item["conflicts"] for item in items] == [None] * 3
    assert points(project) == [(1, 1, 0.1, "str1"), (2, 666, 0.666, "str666"), (3, 666, 0.666, "str666")]
    assert wkt_by_fid(project / "testdata.gpkg", "points_xy") == {
        1: "POINT (666 0)", 2: "POINT (5 0)", 3: "POINT (666 0)"
    }


def test_a_patch_and_a_create(project, deltafile):
    """Upstream pushes this file as a reporter, whose patch the API refuses; the core applies both."""
    items = run(project, deltafile("singlelayer_multidelta_patch_create.json"), overwrite_conflicts=False)

    assert statuses(items) == [APPLIED, APPLIED]
    assert (items[1]["feature_pk"], items[1]["modified_pk"]) == ("", 4)
    assert points(project) == [*ORIGINAL_POINTS, (4, 666, 0.666, "str666")]
    assert wkt_by_fid(project / "testdata.gpkg", "points_xy") == {
        1: "POINT (666 0)", 2: "POINT (5 0)", 3: "POINT (9 0)", 4: "POINT (777 0)"
    }


def test_multiple_layers_and_a_polygon_whose_old_wkt_is_formatted_differently(project, deltafile):
    items = run(project, deltafile("multilayer_multidelta.json"), overwrite_conflicts=False)

    assert statuses(items) == [APPLIED, APPLIED]
    assert points(project)[1] == (2, 666, 0.666, "str666")
    assert rows(project / "testdata.gpkg", "polygons")[0] == (1, 777, 0.777, "str777")
    assert wkt_by_fid(project / "testdata.gpkg", "polygons")[1] == "POLYGON ((666 666,5 2,5 5,2 5,666 666))"


def test_create_modify_delete_on_two_layers_through_client_pks(project, deltafile):
    geojson = project / "points.geojson"
    created = deltafile("multilayer_multidelta_create.json")
    items = run(project, created)
    assert statuses(items) == [APPLIED, APPLIED]
    assert [item["modified_pk"] for item in items] == [1000, 2000]
    assert points(project)[-1] == (1000, 1000, None, None)
    assert wkt_by_fid(project / "testdata.gpkg", "points_xy")[1000] is None
    assert wkt_by_fid(geojson)[2000] == "POINT (666 0)"
    client_pks = {client_key(raw): str(item["modified_pk"]) for raw, item in zip(created, items, strict=True)}

    items = run(project, deltafile("multilayer_multidelta_modify.json"), client_pks=client_pks)
    assert statuses(items) == [APPLIED, APPLIED]
    assert [(item["feature_pk"], item["modified_pk"]) for item in items] == [("1000", 1000), ("2000", 2000)]
    assert points(project)[-1] == (1000, 1001, None, None)
    created_in_geojson = [feature for feature in properties(geojson) if feature["fid"] == 2000]
    if GDAL_DUPLICATES_EDITED_GEOJSON_FEATURES_WITHOUT_ID:
        assert sorted(feature["int"] for feature in created_in_geojson) == [2000, 2002]
    else:
        assert created_in_geojson == [{"int": 2002, "dbl": None, "str": None, "fid": 2000}]
        assert wkt_by_fid(geojson)[2000] == "POINT (777 0)"

    # The deletes carry the values from before the modification: conflicts, overwritten (the default).
    items = run(project, deltafile("multilayer_multidelta_delete.json"), client_pks=client_pks)
    assert items[0]["status"] == APPLIED
    assert items[0]["conflicts"] == ['The attribute "int" that has a conflict:\n-1001\n+1000']
    assert points(project) == ORIGINAL_POINTS
    if GDAL_DUPLICATES_EDITED_GEOJSON_FEATURES_WITHOUT_ID:
        assert items[1]["status"] == APPLY_FAILED
        assert items[1]["msg"] == "More than one feature has \"fid\" = '2000'"
    else:
        assert items[1]["status"] == APPLIED
        assert items[1]["conflicts"] == [
            'The attribute "int" that has a conflict:\n-2002\n+2000',
            "The geometry has a conflict:\n-Point (777 0)\n+POINT (666 0)",
        ]
        assert sorted(wkt_by_fid(geojson)) == [1, 2, 3]


def test_two_clients_create_patch_and_delete_their_features_in_six_jobs(project, deltafile):
    client_pks: dict[str, str] = {}
    steps = [
        ("multistage_p1_c1_create.json", [1, 2, 3, 1000], [(1, 1), (2, 2), (3, 3), (1000, 1000)]),
        ("multistage_p2_c2_create.json", [1, 2, 3, 1000, 2000], [(1000, 1000), (2000, 2000)]),
        ("multistage_p3_c1_patch.json", [1, 2, 3, 1000, 2000], [(1000, 1001), (2000, 2000)]),
        ("multistage_p4_c2_patch.json", [1, 2, 3, 1000, 2000], [(1000, 1001), (2000, 2002)]),
        ("multistage_p5_c1_delete.json", [1, 2, 3, 2000], [(2000, 2002)]),
        ("multistage_p6_c2_delete.json", [1, 2, 3], [(3, 3)]),
    ]
    for name, fids, some_rows in steps:
        deltas = deltafile(name)
        items = run(project, deltas, client_pks=dict(client_pks))
        assert statuses(items) == [APPLIED], name
        for raw, item in zip(deltas, items, strict=True):
            if raw["method"] == "create":
                client_pks[client_key(raw)] = str(item["modified_pk"])
            else:
                assert item["feature_pk"] == client_pks[client_key(raw)] == str(item["modified_pk"]), name
        stored = rows(project / "testdata.gpkg", "points_xy", "fid, int")
        assert [fid for fid, _ in stored] == fids, name
        assert set(some_rows) <= set(stored), name


def test_a_patch_of_a_feature_the_client_created_fails_without_client_pks(project, deltafile):
    run(project, deltafile("multistage_p1_c1_create.json"))

    items = run(project, deltafile("multistage_p3_c1_patch.json"))

    assert statuses(items) == [APPLY_FAILED]
    assert items[0]["msg"] == "Unable to find feature with \"fid\" = '0'"


def test_csv_layer_patched_and_extended(project, deltafile):
    items = run(project, deltafile("nonspatial.json"))

    assert statuses(items) == [APPLIED] * 3
    assert items[0]["conflicts"] == ['The attribute "col1" that has a conflict:\n-foo\n+bar']
    assert items[1]["modified_pk"] == "2"
    assert (project / "nonspatial.csv").read_bytes() == b'fid,col1\n"1",qux\n"2",newfeature\n'


def test_csv_conflicts_are_kept_without_overwrite(project, deltafile):
    items = run(project, deltafile("nonspatial.json"), overwrite_conflicts=False)

    assert statuses(items) == [CONFLICT, APPLIED, CONFLICT]
    assert (project / "nonspatial.csv").read_bytes() == b'fid,col1\n"1",foo\n"2",newfeature\n'


def test_an_empty_geometry_string_on_a_csv_layer_is_ignored(project, deltafile):
    items = run(project, deltafile("nonspatial_geom_empty_str.json"), overwrite_conflicts=False)

    assert statuses(items) == [APPLIED]
    assert (project / "nonspatial.csv").read_bytes() == b'fid,col1\n"1",new_value\n'


def test_dates_datetimes_and_binary_compare_equal_to_their_json_form(project, deltafile):
    items = run(project, deltafile("special_data_types.json"), overwrite_conflicts=False)

    assert statuses(items) == [APPLIED, APPLIED]
    assert items[0]["conflicts"] is None
    assert items[1]["modified_pk"] == 2
    columns = "fid, col_date, col_datetime, col_binary"
    assert rows(project / "testdata.gpkg", "special_data_types", columns) == [
        (1, "2024-03-23", "2024-03-23T01:23:45.000", b"bar"),
        (2, "2025-04-24", "2024-03-23T12:34:56.000", b"2025-04-24"),
    ]


XYZ = "POINT Z ({} 0 0)"
XYZM = "POINT ZM ({} 0 0 0)"


@pytest.mark.parametrize(("name", "table", "point"), [
    ("singlelayer_multidelta_delta_with_xy_for_xyz_layer.json", "points_xyz", XYZ),
    ("singlelayer_multidelta_delta_with_xyz_for_xyz_layer.json", "points_xyz", XYZ),
    ("singlelayer_multidelta_delta_with_xyz_nan_for_xyz_layer.json", "points_xyz", XYZ),
    ("singlelayer_multidelta_delta_with_xy_for_xyzm_layer.json", "points_xyzm", XYZM),
    ("singlelayer_multidelta_delta_with_xyz_for_xyzm_layer.json", "points_xyzm", XYZM),
    ("singlelayer_multidelta_delta_with_xyz_nan_for_xyzm_layer.json", "points_xyzm", XYZM),
    ("singlelayer_multidelta_delta_with_xyzm_for_xyzm_layer.json", "points_xyzm", XYZM),
    ("singlelayer_multidelta_delta_with_xyzm_nan_for_xyzm_layer.json", "points_xyzm", XYZM),
    ("singlelayer_multidelta_delta_with_xyzm_nannan_for_xyzm_layer.json", "points_xyzm", XYZM),
])
def test_z_m_and_nan_coordinates_fit_the_layer(project, deltafile, name, table, point):
    items = run(project, deltafile(name), overwrite_conflicts=False)

    assert statuses(items) == [APPLIED, APPLIED]
    assert items[1]["modified_pk"] == 4
    geometries = wkt_by_fid(project / "testdata.gpkg", table)
    assert (geometries[1], geometries[4]) == (point.format(666), point.format(777))
    assert rows(project / "testdata.gpkg", table)[-1] == (4, 666, 0.666, "str666")


def test_geometries_keep_their_z_lose_what_the_layer_lacks_and_must_fit_its_type(project):
    deltas = [
        delta("patch", POINTS_XYZ, "1", new={"geometry": "POINT ZM (1 2 3 4)"}),
        delta("create", POINTS_XYZM, new={"geometry": "POINT Z (5 6 7)", "attributes": {}}),
        delta("create", POLYGONS, new={"geometry": "POLYGON Z ((0 0 1, 1 0 1, 1 1 1, 0 0 1))"}),
        delta("create", POINTS_XY, new={"geometry": "POLYGON ((0 0, 1 0, 1 1, 0 0))"}),
        delta("patch", POINTS_XY, "2", new={"geometry": None}),
    ]

    items = run(project, deltas)

    assert statuses(items) == [APPLIED, APPLIED, APPLIED, APPLY_FAILED, APPLIED]
    assert items[3]["msg"] == 'A Polygon geometry does not fit layer "points_xy" of type Point'
    gpkg = project / "testdata.gpkg"
    assert wkt_by_fid(gpkg, "points_xyz")[1] == "POINT Z (1 2 3)"
    assert wkt_by_fid(gpkg, "points_xyzm")[4] == "POINT ZM (5 6 7 0)"
    assert wkt_by_fid(gpkg, "polygons")[3] == "POLYGON ((0 0,1 0,1 1,0 0))"
    assert wkt_by_fid(gpkg, "points_xy") == {1: "POINT (1 0)", 2: None, 3: "POINT (9 0)"}


def test_unknown_layer_fails_alone(project, deltafile):
    deltas = deltafile("with_errors.json") + deltafile("singlelayer_singledelta.json")

    items = run(project, deltas)

    assert statuses(items) == [APPLY_FAILED, APPLIED]
    assert items[0]["msg"] == 'No layer with id "pluto"'
    assert (items[0]["e_type"], items[0]["layer_id"]) == ("ERROR", "pluto")
    assert points(project)[0] == (1, 666, 0.1, "str1")


def test_conflict_without_overwrite_changes_nothing(project, deltafile):
    items = run(project, deltafile("singlelayer_singledelta_conflict2.json"), overwrite_conflicts=False)

    assert statuses(items) == [CONFLICT]
    assert (items[0]["e_type"], items[0]["modified_pk"]) == ("CONFLICT", None)
    assert items[0]["conflicts"] == ['The attribute "int" that has a conflict:\n-1\n+134']
    assert points(project) == ORIGINAL_POINTS


def test_conflict_with_overwrite_applies_and_records_the_conflict(project, deltafile):
    items = run(project, deltafile("singlelayer_singledelta_conflict.json"), overwrite_conflicts=True)

    assert statuses(items) == [APPLIED]
    assert items[0]["conflicts"] == ['The attribute "int" that has a conflict:\n-1\n+134']
    assert points(project)[0] == (1, 666, 0.1, "str1")


def test_geometry_conflicts_compare_shapes_not_text(project):
    deltas = [
        delta("patch", POINTS_XY, "1", old={"geometry": "POINT (2 2)"}, new={"attributes": {"int": 5}}),
        delta("patch", POINTS_XY, "2", old={"geometry": "Point(5.0 0.000)"}, new={"attributes": {"int": 6}}),
        delta("patch", POLYGONS, "1", old={"geometry": "POLYGON ((5 2, 5 5, 2 5, 2 2, 5 2))"},
              new={"attributes": {"int": 7}}),
        delta("patch", POINTS_XYZ, "1", old={"geometry": "POINT (1 0)"}, new={"attributes": {"int": 8}}),
        delta("patch", POINTS_XYZ, "2", old={"geometry": "POINT Z (5 0 3)"}, new={"attributes": {"int": 9}}),
        delta("delete", POINTS_XY, "3", old={"geometry": None}),
    ]

    items = run(project, deltas, overwrite_conflicts=False)

    assert statuses(items) == [CONFLICT, APPLIED, APPLIED, APPLIED, CONFLICT, CONFLICT]
    assert items[0]["conflicts"] == ["The geometry has a conflict:\n-Point (1 0)\n+POINT (2 2)"]
    assert items[4]["conflicts"] == ["The geometry has a conflict:\n-PointZ (5 0 0)\n+POINT Z (5 0 3)"]
    assert items[5]["conflicts"] == ["The geometry has a conflict:\n-Point (9 0)\n+NULL"]
    assert points(project) == [(1, 1, 0.1, "str1"), (2, 6, 0.2, "str2"), (3, 3, 0.3, "str3")]
    assert [row[1] for row in rows(project / "testdata.gpkg", "points_xyz")] == [8, 2, 3]


def test_a_new_attribute_without_an_old_value_is_applied(project):
    old, new = {"attributes": {"int": 1}}, {"attributes": {"int": 5, "str": "x"}}
    deltas = [delta("patch", POINTS_XY, "1", old=old, new=new)]

    assert statuses(run(project, deltas, overwrite_conflicts=False)) == [APPLIED]
    assert points(project)[0] == (1, 5, 0.1, "x")


def test_one_bad_delta_never_stops_the_others_and_leaves_no_trace(project):
    deltas = [
        delta("patch", POINTS_XY, "1", new={"attributes": {"int": 10}}),
        delta("patch", POINTS_XY, "2", new={"attributes": {"str": "changed", "int": "abc"}}),
        delta("patch", POINTS_XY, "2", new={"attributes": {"str": "changed"}, "geometry": "POINT (oops)"}),
        delta("patch", POINTS_XY, "3", new=5),
        delta("create", POINTS_XY, new={"geometry": "POINT (7 7)", "attributes": {"int": 40}}),
        delta("patch", POINTS_XY, "2", new={"attributes": {"int": 22, "no_such_field": 1}}),
        delta("upsert", POINTS_XY, "2"),
        delta("patch", POINTS_XY, "3", new={"attributes": {"int": 30}}),
    ]

    items = run(project, deltas)

    assert statuses(items) == [
        APPLIED, APPLY_FAILED, APPLY_FAILED, UNKNOWN_ERROR, APPLIED, APPLY_FAILED, APPLY_FAILED, APPLIED
    ]
    assert items[1]["msg"].startswith('Invalid value for attribute "int": Value could not be converted')
    assert items[2]["msg"] == "Invalid WKT geometry: 'POINT (oops)'"
    assert items[3]["msg"].startswith("TypeError: ")
    assert items[5]["msg"] == 'Unable to change attribute "no_such_field": the layer has no such field'
    assert items[6]["msg"] == 'Unknown delta method "upsert"'
    assert points(project) == [
        (1, 10, 0.1, "str1"), (2, 2, 0.2, "str2"), (3, 30, 0.3, "str3"), (4, 40, None, None)
    ]
    assert wkt_by_fid(project / "testdata.gpkg", "points_xy")[2] == "POINT (5 0)"


def test_more_than_one_match_fails_that_delta_only(project):
    geojson = project / "points.geojson"
    collection = json.loads(geojson.read_text())
    collection["features"][2]["properties"]["fid"] = 2
    geojson.write_text(json.dumps(collection))
    deltas = [
        delta("patch", POINTS_GEOJSON, "2", new={"attributes": {"int": 20}}),
        delta("patch", POINTS_GEOJSON, "1", new={"attributes": {"int": 10}}),
    ]

    items = run(project, deltas)

    assert statuses(items) == [APPLY_FAILED, APPLIED]
    assert items[0]["msg"] == "More than one feature has \"fid\" = '2'"
    assert [feature["int"] for feature in properties(geojson)] == [10, 2, 3]


@pytest.mark.parametrize("pk", ["1.5", "abc", "", "99"])
def test_a_pk_that_names_no_feature_fails(project, pk):
    items = run(project, [delta("delete", POINTS_XY, pk), delta("delete", POINTS_GEOJSON, pk)])

    assert statuses(items) == [APPLY_FAILED, APPLY_FAILED]
    assert items[0]["msg"] == f'Unable to find feature with "fid" = {pk!r}'
    assert points(project) == ORIGINAL_POINTS


def test_a_feature_created_with_an_explicit_pk_can_be_edited_in_the_same_job(project):
    deltas = [
        delta("create", POINTS_XY, new={"geometry": "POINT (1 1)", "attributes": {"fid": 1000, "int": 1}}),
        delta("patch", POINTS_XY, "1000", old={"attributes": {"int": 1}}, new={"attributes": {"int": 2}}),
        delta("create", POINTS_XY, new={"geometry": "POINT (2 2)", "attributes": {"fid": 1001, "int": 5}}),
        delta("delete", POINTS_XY, "1001", old={"attributes": {"int": 5}}),
    ]

    items = run(project, deltas, overwrite_conflicts=False)

    assert statuses(items) == [APPLIED] * 4
    assert [item["modified_pk"] for item in items] == [1000, 1000, None, 1001]
    assert points(project) == [*ORIGINAL_POINTS, (1000, 2, None, None)]


def test_a_create_gets_the_layers_default_values_but_keeps_the_clients(project, deltafile):
    deltas = deltafile("singlelayer_singledelta_add_feature_default_value.json")
    deltas.append(delta("create", deltas[0]["sourceLayerId"], new={
        "geometry": "POLYGON ((0 0, 1 0, 1 1, 0 0))", "attributes": {"int": 2}
    }))

    items = run(project, deltas, project_file="project3.qgs")

    assert statuses(items) == [APPLIED, APPLIED]
    assert [item["modified_pk"] for item in items] == [3, 4]
    created = rows(project / "testdata.gpkg", "polygons")[2:]
    assert created == [(3, 1, 1.0, "correct!"), (4, 2, -1.0, "error!")]
    assert wkt_by_fid(project / "testdata.gpkg", "polygons")[3] == "POLYGON ((1 1,2 1,2 2,1 2,1 1))"


def test_an_invalid_layer_fails_its_deltas(project, deltafile):
    (project / "nonspatial.csv").unlink()

    items = run(project, deltafile("nonspatial.json"))

    assert statuses(items) == [APPLY_FAILED] * 3
    assert items[0]["msg"].startswith('Layer "nonspatial" is invalid')
    assert items[0]["layer_id"] == NONSPATIAL_CSV


def test_a_project_qgis_cannot_open_applies_nothing(project, deltafile):
    (project / "broken.qgs").write_text("<qgis><not closed")

    for project_file, error_type in (("broken.qgs", "INVALID_PROJECT_FILE"), ("gone.qgs", "FILE_NOT_FOUND")):
        feedback = apply_deltas(project, project_file, deltafile("singlelayer_singledelta.json"), {}, True)

        assert feedback["error_type"] == error_type
        assert [step["stage"] for step in feedback["steps"]] == [2, 1]
        assert "apply_deltas" not in feedback["outputs"]
    assert points(project) == ORIGINAL_POINTS


def _refuse_int_13(gpkg: Path, event: str) -> None:
    with sqlite3.connect(gpkg) as db:
        db.execute(
            f"CREATE TRIGGER refuse_13 BEFORE {event} ON points_xy WHEN NEW.int = 13 "
            "BEGIN SELECT RAISE(ABORT, 'int 13 refused'); END"
        )


def test_a_refused_commit_is_retried_delta_by_delta(project):
    _refuse_int_13(project / "testdata.gpkg", "UPDATE")
    deltas = [
        delta("patch", POINTS_XY, "1", new={"attributes": {"int": 13}}),
        delta("patch", POINTS_XY, "2", old={"attributes": {"int": 2}}, new={"attributes": {"int": 20}}),
        delta("create", POINTS_XY, new={"geometry": "POINT (4 4)", "attributes": {"int": 30}}),
        delta("delete", POINTS_XY, "3", old={"attributes": {"int": 3}}),
    ]

    items = run(project, deltas, overwrite_conflicts=False)

    assert statuses(items) == [APPLY_FAILED, APPLIED, APPLIED, APPLIED]
    assert items[0]["msg"] == "Failed to commit changes"
    assert any("int 13 refused" in error for error in items[0]["provider_errors"])
    assert items[2]["modified_pk"] == 4
    assert points(project) == [(1, 1, 0.1, "str1"), (2, 20, 0.2, "str2"), (4, 30, None, None)]


def test_edits_a_refused_commit_wrote_anyway_are_not_applied_twice(project):
    _refuse_int_13(project / "testdata.gpkg", "INSERT")
    deltas = [
        delta("patch", POINTS_XY, "1", old={"attributes": {"int": 1}}, new={"attributes": {"int": 11}}),
        delta("create", POINTS_XY, new={"geometry": "POINT (4 4)", "attributes": {"int": 13}}),
        delta("create", POINTS_XY, new={"geometry": "POINT (5 5)", "attributes": {"int": 14}}),
        delta("delete", POINTS_XY, "3", old={"attributes": {"int": 3}}),
    ]

    items = run(project, deltas, overwrite_conflicts=False)

    assert statuses(items) == [APPLIED, APPLY_FAILED, APPLIED, APPLIED]
    stored = points(project)
    assert stored[:2] == [(1, 11, 0.1, "str1"), (2, 2, 0.2, "str2")]
    assert stored[2][1:] == (14, None, None)
    assert items[2]["modified_pk"] == stored[2][0]


def _write_project(directory: Path, sources: dict[str, str]) -> dict[str, str]:
    """A project `project.qgs` with a layer per OGR source (name -> path); the layer ids by name."""
    from qgis.core import QgsProject, QgsVectorLayer

    project = QgsProject()
    for name, source in sources.items():
        project.addMapLayer(QgsVectorLayer(source, name, "ogr"))
    project.write(str(directory / "project.qgs"))
    ids = {layer.name(): layer.id() for layer in project.mapLayers().values()}
    project.clear()
    return ids


def _write_shapefile_project(directory: Path) -> dict[str, str]:
    """Two point shapefiles, `trees` with a `fid` field and `plain` without, and a project."""
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(2056)
    for name, with_fid in (("trees", True), ("plain", False)):
        dataset = ogr.GetDriverByName("ESRI Shapefile").CreateDataSource(str(directory / f"{name}.shp"))
        layer = dataset.CreateLayer(name, srs, ogr.wkbPoint)
        if with_fid:
            layer.CreateField(ogr.FieldDefn("fid", ogr.OFTInteger))
        layer.CreateField(ogr.FieldDefn("species", ogr.OFTString))
        for index, species in enumerate(["oak", "pine"], start=1):
            feature = ogr.Feature(layer.GetLayerDefn())
            if with_fid:
                feature.SetField("fid", index)
            feature.SetField("species", species)
            feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({index} {index})"))
            layer.CreateFeature(feature)
        dataset = None
    return _write_project(directory, {name: str(directory / f"{name}.shp") for name in ("trees", "plain")})


def test_shapefile_layers(qgis, tmp_path):
    ids = _write_shapefile_project(tmp_path)
    deltas = [
        delta("patch", ids["trees"], "1", old={"geometry": "POINT (1 1)", "attributes": {"species": "oak"}},
              new={"geometry": "POINT (10 10)", "attributes": {"species": "elm"}}),
        delta("create", ids["trees"],
              new={"geometry": "POINT (3 3)", "attributes": {"fid": 3, "species": "fir"}}),
        delta("delete", ids["trees"], "2", old={"attributes": {"species": "pine"}}),
        delta("patch", ids["plain"], "1", new={"attributes": {"species": "elm"}}),
    ]

    items = run(tmp_path, deltas, overwrite_conflicts=False)

    assert statuses(items) == [APPLIED, APPLIED, APPLIED, APPLY_FAILED]
    assert items[1]["modified_pk"] == 3
    assert items[3]["msg"] == 'Layer "plain" has neither a primary key nor a "fid" field'
    assert properties(tmp_path / "trees.shp") == [{"fid": 1, "species": "elm"}, {"fid": 3, "species": "fir"}]
    assert wkt_by_fid(tmp_path / "trees.shp") == {1: "POINT (10 10)", 3: "POINT (3 3)"}


def test_the_data_sources_constraints_fail_the_delta_that_breaks_them(qgis, tmp_path):
    from osgeo import ogr

    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp_path / "sites.gpkg"))
    layer = dataset.CreateLayer("sites", geom_type=ogr.wkbNone)
    name, code = ogr.FieldDefn("name", ogr.OFTString), ogr.FieldDefn("code", ogr.OFTString)
    name.SetNullable(False)
    code.SetUnique(True)
    layer.CreateField(name)
    layer.CreateField(code)
    for index in (1, 2):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("name", f"site {index}")
        feature.SetField("code", f"S{index}")
        layer.CreateFeature(feature)
    dataset = None
    sites = _write_project(tmp_path, {"sites": f"{tmp_path / 'sites.gpkg'}|layername=sites"})["sites"]
    deltas = [
        delta("create", sites, new={"attributes": {"code": "S3"}}),
        delta("patch", sites, "2", new={"attributes": {"name": "second", "code": "S1"}}),
        delta("patch", sites, "1", new={"attributes": {"name": None}}),
        delta("create", sites, new={"attributes": {"name": "site 4", "code": "S4"}}),
    ]

    items = run(tmp_path, deltas)

    assert statuses(items) == [APPLY_FAILED, APPLY_FAILED, APPLY_FAILED, APPLIED]
    assert items[0]["msg"] == 'The data source of layer "sites" refuses the feature'
    assert [error.split(":")[0] for error in items[0]["provider_errors"]] == ['"name"']
    assert [error.split(":")[0] for error in items[1]["provider_errors"]] == ['"code"']
    assert rows(tmp_path / "sites.gpkg", "sites", "fid, name, code") == [
        (1, "site 1", "S1"), (2, "site 2", "S2"), (3, "site 4", "S4")
    ]


@pytest.mark.parametrize("kind", ["patch", "mixed"])
def test_generated_deltas_pass_the_shared_independent_checker(qgis, tmp_path, kind):
    tools = shared_data.tools()
    subprocess.run([sys.executable, tools / "make_points_project.py", tmp_path, "2000"], check=True,
                   capture_output=True)
    deltafile = tmp_path / "deltas.json"
    subprocess.run([sys.executable, tools / "make_deltafile.py", "make", tmp_path, deltafile, "--kind", kind,
                    "--count", "150"], check=True, capture_output=True)
    deltas = json.loads(deltafile.read_text())["deltas"]

    items = run(tmp_path, deltas, overwrite_conflicts=False)

    assert statuses(items) == [APPLIED] * len(deltas)
    checked = subprocess.run([sys.executable, tools / "make_deltafile.py", "verify", tmp_path, deltafile],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
    texts = dict(rows(tmp_path / "points.gpkg", "points", "fid, text_col"))
    for raw, item in zip(deltas, items, strict=True):
        if raw["method"] == "create":
            assert texts[item["modified_pk"]] == raw["new"]["attributes"]["text_col"]
