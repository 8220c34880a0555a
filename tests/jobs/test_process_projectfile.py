"""process_projectfile on real projects with real QGIS; what it reports is checked against
independent readers of the same files (sqlite3, OGR, ElementTree, Pillow)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import threading
import zipfile
from pathlib import Path

import pytest

from chalicelib.rules import qgz_limits
from job_containers.cores.process_projectfile import process_projectfile
from tests.jobs import readers
from tests.jobs.layer_ids import APIARY, BEE_LAYERS, FIELDS


def details(feedback: dict) -> dict:
    assert "error" not in feedback, feedback.get("error")
    assert [step["stage"] for step in feedback["steps"]] == [2] * len(feedback["steps"])
    return feedback["outputs"]["project_details"]["project_details"]


def assert_failed_at(feedback: dict, step_id: str, error_type: str) -> str:
    stages = {step["id"]: step["stage"] for step in feedback["steps"]}
    assert stages[step_id] == 1
    assert all(stage == 0 for stage in list(stages.values())[list(stages).index(step_id) + 1:])
    assert feedback["error_type"] == error_type
    assert "project_details" not in feedback["outputs"]
    return feedback["error"]


def assert_real_thumbnail(out: Path) -> None:
    size, colours = readers.image_colours(out / "thumbnail.png")
    assert size == (100, 100)
    assert colours > 10, "the thumbnail shows nothing but the background"


def test_bee_farming_reports_valid_layers_counts_fields_themes_and_thumbnail(qgis, bee_project, tmp_path):
    out = tmp_path / "out"

    feedback = process_projectfile(bee_project, "simple_bee_farming.qgs", out)

    project = details(feedback)
    assert project["project_name"] == "Simple Bee Farming Demo"
    assert project["crs"] == "EPSG:3857"
    assert project["qgis_version"] == "3.12.0"
    assert project["extent"].startswith("POLYGON((9.25")
    assert project["attachment_dirs"] == ["DCIM"] and project["data_dirs"] == []
    themes = [e.get("name") for e in readers.project_root(bee_project / "simple_bee_farming.qgs")
              .iter("visibility-preset")]
    assert sorted(project["map_themes"]) == sorted(themes) and len(themes) == 3
    assert project["ordered_layer_ids"] == readers.layer_tree_ids(bee_project / "simple_bee_farming.qgs")
    for layer_id, (gpkg, table) in BEE_LAYERS.items():
        layer = project["layers_by_id"][layer_id]
        assert layer["is_valid"] is True and layer["error_code"] == "no_error"
        assert layer["feature_count"] == readers.gpkg_count(bee_project / gpkg, table)
        assert layer["filename"] == gpkg and layer["qfc_source_data_pk_name"] == "fid"
    apiary_fields = {f["name"]: f for f in project["layers_by_id"][APIARY]["fields"]}
    boxes = apiary_fields["nbr_of_boxes"]
    assert (boxes["alias"], boxes["widget_type"]) == ("Number of Boxes", "Range")
    assert boxes["widget_config"]["Max"] == 10
    assert boxes["constraint_expression"] == "1 <= nbr_of_boxes and nbr_of_boxes <= 10"
    assert apiary_fields["bee_species"]["widget_type"] == "ValueMap"
    assert_real_thumbnail(out)
    json.dumps(feedback)


def test_simple_project_reports_missing_spatialite_file_and_counts_the_others(qgis, simple_project, tmp_path):
    feedback = process_projectfile(simple_project, "project.qgs", tmp_path / "out")

    layers = details(feedback)["layers_by_id"]
    for layer_id in ("somedata20161130143219568", "somepolydata20161130143219577"):
        assert layers[layer_id]["is_valid"] is False
        assert layers[layer_id]["error_code"] == "invalid_dataprovider"
        assert layers[layer_id]["error_summary"] == 'File "spatialite.db" missing.'
        assert layers[layer_id]["feature_count"] is None
    assert layers["curved_polys20161130143036265"]["feature_count"] == readers.gpkg_count(
        simple_project / "curved_polys.gpkg", "polys")
    assert layers["curved_polys20161130143036265"]["wkb_type_name"] == "CurvePolygon"
    shapefile = layers["france_parts_shape20161130142748672"]
    assert shapefile["feature_count"] == readers.ogr_count(simple_project / "france_parts_shape.shp")
    assert shapefile["qfc_source_data_pk_name"] == "" and len(shapefile["fields"]) == 38
    # Its saved canvas reaches latitude 128: no WGS84 extent to give.
    assert details(feedback)["extent"] == ""
    assert_real_thumbnail(tmp_path / "out")


def test_delta_project_lists_gpkg_geojson_and_csv_layers_in_legend_order(qgis, delta_project, tmp_path):
    feedback = process_projectfile(delta_project, "project.qgs", tmp_path / "out")

    project = details(feedback)
    assert project["ordered_layer_ids"] == readers.layer_tree_ids(delta_project / "project.qgs")
    layers = project["layers_by_id"]
    assert list(layers) == project["ordered_layer_ids"] and len(layers) == 8
    assert all(layer["is_valid"] for layer in layers.values())
    gpkg = delta_project / "testdata.gpkg"
    expected_counts = {
        "points_xy_897d5ed7_b810_4624_abe3_9f7c0a93d6a1": readers.gpkg_count(gpkg, "points_xy"),
        "polygons_f18b6046_8e46_4206_a698_641c58e5ac73": readers.gpkg_count(gpkg, "polygons"),
        "special_data_types_c89719e4_25b5_4df7_b28d_ea5d086bd292": readers.gpkg_count(
            gpkg, "special_data_types"),
        "points_c2784cf9_c9c3_45f6_9ce5_98a6047e4d6c": len(
            json.loads((delta_project / "points.geojson").read_text())["features"]),
        "polygons_5096fc7b_b106_4740_90b4_9de822382d71": len(
            json.loads((delta_project / "polygons.geojson").read_text())["features"]),
        "nonspatial_5b9be5d0_6faa_4c14_825d_7889615c842c": len(
            list(csv.DictReader((delta_project / "nonspatial.csv").open()))),
    }
    assert {layer_id: layers[layer_id]["feature_count"] for layer_id in expected_counts} == expected_counts
    # GeoJSON and CSV have no provider key: the `fid` field stands in.
    assert layers["points_c2784cf9_c9c3_45f6_9ce5_98a6047e4d6c"]["qfc_source_data_pk_name"] == "fid"
    assert layers["nonspatial_5b9be5d0_6faa_4c14_825d_7889615c842c"]["geom_type_name"] == "Null"
    assert_real_thumbnail(tmp_path / "out")


def test_broken_xml_fails_with_its_line_and_column(qgis, delta_project, tmp_path):
    feedback = process_projectfile(delta_project, "broken.qgs", tmp_path / "out")

    error = assert_failed_at(feedback, "project_validity_check", "INVALID_PROJECT_FILE")
    assert "on line 20, column 29" in error and "<!-- <layer-tree-group>" in error
    assert not (tmp_path / "out" / "thumbnail.png").exists()


def test_unreachable_postgis_layer_is_reported_not_fatal(qgis, delta_project, tmp_path):
    feedback = process_projectfile(delta_project, "project_broken_datasource.qgs", tmp_path / "out")

    layers = details(feedback)["layers_by_id"]
    postgis = layers["surfacestructure_35131bca_337c_483b_b09e_1cf77b1dfb16"]
    assert postgis["is_valid"] is False and postgis["error_code"] == "invalid_dataprovider"
    assert postgis["error_summary"] == 'Unable to connect to host "fefi.opengizzzz.ch".'
    assert "Bhooo" not in json.dumps(feedback), "the database password leaked into the feedback"
    assert layers["points_c2784cf9_c9c3_45f6_9ce5_98a6047e4d6c"]["feature_count"] == 3


def test_an_unknown_database_service_is_reported_not_fatal(qgis, delta_project, tmp_path):
    feedback = process_projectfile(delta_project, "project_pgservice.qgs", tmp_path / "out")

    summaries = [layer["error_summary"] for layer in details(feedback)["layers_by_id"].values()]
    assert summaries == ['Unable to connect to service "geodb1".', 'Unable to connect to service "geodb2".']


def test_layers_in_a_localized_path_are_reported_as_such(qgis, testdata, tmp_path):
    shutil.copyfile(testdata / "app" / "simple_bumblebees_wrong_localized.qgs", tmp_path / "p.qgs")

    feedback = process_projectfile(tmp_path, "p.qgs", tmp_path / "out")

    layers = {layer["name"]: layer for layer in details(feedback)["layers_by_id"].values()}
    localized = layers["apiary_valid_localized"]
    assert (localized["is_localized"], localized["error_code"]) == (True, "localized_dataprovider")
    assert localized["filename"] == "bumblebees.gpkg" and "localized data path" in localized["error_summary"]
    assert layers["apiary_doesnotexist"]["is_localized"] is False
    assert layers["apiary_doesnotexist"]["error_summary"] == 'File "bumblebees_doesnotexist.gpkg" missing.'


@pytest.mark.timeout(60)
def test_a_canvas_beyond_the_world_neither_hangs_nor_gives_an_extent(qgis, testdata, tmp_path):
    # Web Mercator canvas reaching y = 242,528,680 m, over an OpenStreetMap layer: QGIS 3.22 renders
    # that forever unless the extent is clipped to the CRS's area of use.
    shutil.copyfile(testdata / "app" / "project_with_invalid_extent.qgs", tmp_path / "p.qgs")

    feedback = process_projectfile(tmp_path, "p.qgs", tmp_path / "out")

    project = details(feedback)
    assert project["extent"] == ""
    assert [layer["is_valid"] for layer in project["layers_by_id"].values()].count(True) == 1
    assert readers.image_colours(tmp_path / "out" / "thumbnail.png")[0] == (100, 100)


def test_missing_data_file_gives_an_invalid_layer_and_a_reason(qgis, bee_project, tmp_path):
    (bee_project / "bumblebees.gpkg").unlink()

    feedback = process_projectfile(bee_project, "simple_bee_farming.qgs", tmp_path / "out")

    layers = details(feedback)["layers_by_id"]
    assert layers[FIELDS]["is_valid"] is False
    assert layers[FIELDS]["error_summary"] == 'File "bumblebees.gpkg" missing.'
    assert layers[APIARY]["is_valid"] is True


@pytest.fixture
def watched_file(tmp_path):
    """A named pipe standing for a secret file: any process that opens it is noticed."""
    path = tmp_path / "secret"
    os.mkfifo(path)
    opened, done = threading.Event(), threading.Event()

    def watch() -> None:
        while not done.wait(0.005):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # succeeds only once a reader is there
            except OSError:
                continue
            opened.set()
            os.write(fd, b"TOP SECRET")
            os.close(fd)

    thread = threading.Thread(target=watch)
    thread.start()
    yield path, opened
    done.set()
    thread.join()


@pytest.mark.parametrize("document", [
    '<!DOCTYPE qgis [<!ENTITY secret SYSTEM "file://{path}">]>\n'
    '<qgis version="3.22.0"><title>&secret;</title></qgis>',
    '<!DOCTYPE qgis [<!ENTITY % secret SYSTEM "file://{path}"> %secret;]>\n<qgis version="3.22.0"/>',
    '<!DOCTYPE qgis [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>\n'
    '<qgis version="3.22.0"><title>&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;</title></qgis>',
], ids=["xxe", "parameter-entity", "billion-laughs"])
def test_entity_declarations_are_refused_before_anything_reads_them(qgis, tmp_path, watched_file, document):
    secret, opened = watched_file
    (tmp_path / "evil.qgs").write_text(document.format(path=secret))

    feedback = process_projectfile(tmp_path, "evil.qgs", tmp_path / "out")

    error = assert_failed_at(feedback, "project_validity_check", "INVALID_PROJECT_FILE")
    assert "entities" in error and "line 1" in error
    assert not opened.is_set(), "the external entity was read"
    assert "TOP SECRET" not in json.dumps(feedback)


def test_an_external_document_type_is_never_fetched(qgis, tmp_path, watched_file):
    secret, opened = watched_file
    (tmp_path / "dtd.qgs").write_text(f'<!DOCTYPE qgis SYSTEM "file://{secret}">\n<qgis version="3.22.0"/>')

    feedback = process_projectfile(tmp_path, "dtd.qgs", tmp_path / "out")

    assert details(feedback)["layers_by_id"] == {}
    assert not opened.is_set(), "the external DTD was read"


def test_a_qgz_project_is_processed_like_its_qgs(qgis, bee_project, tmp_path):
    with zipfile.ZipFile(bee_project / "bees.qgz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(bee_project / "simple_bee_farming.qgs", "bees.qgs")

    feedback = process_projectfile(bee_project, "bees.qgz", tmp_path / "out")

    layers = details(feedback)["layers_by_id"]
    assert [layer["feature_count"] for layer in layers.values()] == [35, 14]
    assert_real_thumbnail(tmp_path / "out")


def test_a_qgz_that_would_unpack_too_much_is_refused(qgis, bee_project, tmp_path, monkeypatch):
    monkeypatch.setattr(qgz_limits, "MAX_UNPACKED_BYTES", 8 * 1024**2)
    with zipfile.ZipFile(bee_project / "bomb.qgz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(bee_project / "simple_bee_farming.qgs", "bomb.qgs")
        archive.writestr("padding.qgd", bytes(16 * 1024**2))
    assert (bee_project / "bomb.qgz").stat().st_size < 1024**2

    feedback = process_projectfile(bee_project, "bomb.qgz", tmp_path / "out")

    assert "would unpack to more than 8 MiB" in assert_failed_at(
        feedback, "project_validity_check", "INVALID_PROJECT_FILE")


def test_a_qgz_member_that_unpacks_like_a_zip_bomb_is_refused_unread(qgis, bee_project, tmp_path):
    with zipfile.ZipFile(bee_project / "bomb.qgz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(bee_project / "simple_bee_farming.qgs", "bomb.qgs")
        archive.writestr("bomb.qgd", bytes(64 * 1024**2))  # 64 MiB of zeros in about 64 KiB

    feedback = process_projectfile(bee_project, "bomb.qgz", tmp_path / "out")

    assert 'holds "bomb.qgd", which would unpack to more than 200 times its size' in assert_failed_at(
        feedback, "project_validity_check", "INVALID_PROJECT_FILE")


def test_a_qgz_with_more_members_than_qgis_writes_is_refused(qgis, tmp_path):
    with zipfile.ZipFile(tmp_path / "p.qgz", "w") as archive:
        archive.writestr("p.qgs", "<qgis/>")
        for number in range(qgz_limits.MAX_MEMBERS):
            archive.writestr(f"extra/{number}.txt", "")

    feedback = process_projectfile(tmp_path, "p.qgz", tmp_path / "out")

    assert "holds more than 1000 files" in assert_failed_at(
        feedback, "project_validity_check", "INVALID_PROJECT_FILE")


@pytest.mark.parametrize(("members", "expected"), [
    ({"a.qgs": "<qgis/>", "b.qgs": "<qgis/>"}, "exactly one .qgs project, it holds 2"),
    ({"readme.txt": "no project"}, "exactly one .qgs project, it holds 0"),
    ({"../escape.qgs": "<qgis/>"}, "unsafe path"),
])
def test_a_qgz_must_hold_one_safe_project(qgis, tmp_path, members, expected):
    with zipfile.ZipFile(tmp_path / "p.qgz", "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)

    feedback = process_projectfile(tmp_path, "p.qgz", tmp_path / "out")

    assert expected in assert_failed_at(feedback, "project_validity_check", "INVALID_PROJECT_FILE")


def test_an_lzma_qgz_is_refused_before_it_can_crash_qgis(qgis, bee_project, tmp_path):
    with zipfile.ZipFile(bee_project / "p.qgz", "w", zipfile.ZIP_LZMA) as archive:
        archive.write(bee_project / "simple_bee_farming.qgs", "p.qgs")

    feedback = process_projectfile(bee_project, "p.qgz", tmp_path / "out")

    assert "compression QGIS cannot read" in assert_failed_at(
        feedback, "project_validity_check", "INVALID_PROJECT_FILE")


def test_a_txt_project_file_fails_clearly(qgis, tmp_path):
    (tmp_path / "project.txt").write_text("<qgis/>")

    feedback = process_projectfile(tmp_path, "project.txt", tmp_path / "out")

    assert 'unknown extension ".txt"' in assert_failed_at(
        feedback, "project_validity_check", "INVALID_PROJECT_FILE")


def test_a_missing_project_file_fails_clearly(qgis, tmp_path):
    feedback = process_projectfile(tmp_path, "nowhere.qgs", tmp_path / "out")

    assert assert_failed_at(feedback, "project_validity_check", "FILE_NOT_FOUND") == (
        'Project file "nowhere.qgs" does not exist.')
