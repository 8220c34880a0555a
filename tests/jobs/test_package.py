"""package on real projects with real QGIS. What it wrote is read back independently (sqlite3,
OGR, ElementTree), and the packaged project is opened with QGIS as QField would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from osgeo import ogr, osr
from qgis.core import QgsProject

from job_containers.cores.package import package
from tests.jobs import readers
from tests.jobs.layer_ids import APIARY, BEE_LAYERS, FIELDS
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
DELTA_GPKG_LAYERS = {
    "points_xy_897d5ed7_b810_4624_abe3_9f7c0a93d6a1": "points_xy",
    "points_xyz_ff574332_1ff5_47e6_8d6a_15f68e0c7cd1": "points_xyz",
    "points_xyzm_1cb6363a_5a99_4090_aeaf_d88deec2a3d8": "points_xyzm",
    "polygons_f18b6046_8e46_4206_a698_641c58e5ac73": "polygons",
    "special_data_types_c89719e4_25b5_4df7_b28d_ea5d086bd292": "special_data_types",
}
DELTA_POINTS_GEOJSON = "points_c2784cf9_c9c3_45f6_9ce5_98a6047e4d6c"
DELTA_POLYGONS_GEOJSON = "polygons_5096fc7b_b106_4740_90b4_9de822382d71"
DELTA_CSV = "nonspatial_5b9be5d0_6faa_4c14_825d_7889615c842c"
SHAPEFILE = "france_parts_shape20161130142748672"
SPATIALITE_LAYERS = ("somedata20161130143219568", "somepolydata20161130143219577")


def succeeded(feedback: dict) -> dict:
    assert "error" not in feedback, feedback.get("error")
    assert [step["stage"] for step in feedback["steps"]] == [2] * 5
    return feedback["outputs"]


def feature_counts(outputs: dict, step: str) -> dict[str, int | None]:
    return {layer_id: layer["feature_count"] for layer_id, layer in outputs[step]["layers_by_id"].items()}


@contextmanager
def opened_in_qgis(project_file: Path) -> Iterator[QgsProject]:
    """The packaged project as QField's QGIS reads it."""
    project = QgsProject()
    assert project.read(str(project_file))
    try:
        yield project
    finally:
        project.clear()


def maplayers(project_file: Path) -> dict[str, ET.Element]:
    root = readers.project_root(project_file)
    return {layer.findtext("id"): layer for layer in root.iter("maplayer") if layer.findtext("id")}


def custom_properties(maplayer: ET.Element) -> dict[str, str]:
    properties = maplayer.find("customproperties")
    legacy = {p.get("key"): p.get("value") for p in properties.findall("property")}
    return legacy | {o.get("name"): o.get("value") for o in properties.findall("Option/Option")}


def write_entries(project_file: Path, entries: dict[tuple[str, str], str | list[str] | bool]) -> None:
    """Add project entries as QGIS stores them (`QgsProject.writeEntry(scope, key, value)`)."""
    tree = ET.parse(project_file)
    properties = tree.getroot().find("properties")
    for (scope, key), value in entries.items():
        scope_element = properties.find(scope)
        if scope_element is None:
            scope_element = ET.SubElement(properties, scope)
        entry = ET.SubElement(scope_element, key)
        if isinstance(value, list):
            entry.set("type", "QStringList")
            for item in value:
                ET.SubElement(entry, "value").text = item
        else:
            entry.set("type", "bool" if isinstance(value, bool) else "QString")
            entry.text = str(value).lower() if isinstance(value, bool) else value
    tree.write(project_file, encoding="utf-8")


def test_packaged_bee_farming_opens_in_qgis_with_its_data_offline(qgis, bee_project, tmp_path):
    out = tmp_path / "package"

    outputs = succeeded(package(bee_project, "simple_bee_farming.qgs", out))

    assert sorted(readers.md5sums(out)) == ["data.gpkg", "simple_bee_farming_qfield.qgs"]
    packaged = out / "simple_bee_farming_qfield.qgs"
    assert readers.gpkg_tables(out / "data.gpkg") == {"apiary", "area"}
    with opened_in_qgis(packaged) as project:
        assert sorted(project.mapLayers()) == sorted(BEE_LAYERS), "layer ids must survive packaging"
        assert project.readEntry("OfflineEditingPlugin", "/OfflineDbPath")[0] == "./data.gpkg"
        assert project.readEntry("qfieldsync", "/originalProjectPath")[0] == "simple_bee_farming.qgs"
        for layer_id, (gpkg, table) in BEE_LAYERS.items():
            layer = project.mapLayer(layer_id)
            assert layer.isValid()
            assert layer.source() == f"{out / 'data.gpkg'}|layername={table}"
            assert layer.featureCount() == readers.gpkg_count(bee_project / gpkg, table)
            assert layer.customProperty("QFieldSync/remoteLayerId") == layer_id
            assert layer.customProperty("QFieldSync/sourceDataPrimaryKeys") == "fid"
            assert layer.customProperty("isOfflineEditable") in (True, "true")
            assert layer.customProperty("remoteProvider") == "ogr"
            assert layer.customProperty("remoteSource") == f"./{gpkg}|layername={table}"
            assert not layer.readOnly()
            # Stable keys: each packaged feature has its source primary key.
            assert readers.gpkg_column_values(out / "data.gpkg", table, "fid") == readers.gpkg_column_values(
                bee_project / gpkg, table, "fid")
        assert project.mapThemeCollection().mapThemes() == ["Diseases", "Heatmap", "Species"]
        # A theme puts back the custom properties stored with its style: they must survive that.
        apiary = project.mapLayer(APIARY)
        apiary.styleManager().setCurrentStyle("Diseases")
        assert apiary.customProperty("QFieldSync/sourceDataPrimaryKeys") == "fid"
        assert apiary.customProperty("remoteSource") == "./bees.gpkg|layername=apiary"
    canvas = [c for c in readers.project_root(packaged).iter("mapcanvas") if c.get("name") == "theMapCanvas"]
    assert canvas and canvas[0].findtext("extent/xmin").startswith("1030024.349")
    assert "password" not in packaged.read_text(), "a stale remoteSource kept its database password"

    assert list(outputs["qgis_layers_data"]["layers_by_id"]) == list(BEE_LAYERS)
    assert outputs["qgis_layers_data"]["layers_by_id"][APIARY]["datasource"] == "./bees.gpkg|layername=apiary"
    packaged_layers = outputs["qfield_layer_data"]["layers_by_id"]
    assert packaged_layers[FIELDS]["datasource"] == "./data.gpkg|layername=area"
    assert [layer["feature_count"] for layer in packaged_layers.values()] == [35, 14]
    json.dumps(outputs)


def test_packaging_an_unchanged_project_again_gives_identical_files(qgis, bee_project, tmp_path):
    first = tmp_path / "first"
    succeeded(package(bee_project, "simple_bee_farming.qgs", first))
    again = tmp_path / "elsewhere" / "again"
    again.parent.mkdir()
    (tmp_path / "elsewhere" / "project").mkdir()
    for file in bee_project.iterdir():
        (tmp_path / "elsewhere" / "project" / file.name).write_bytes(file.read_bytes())
    packaged_at = int(time.time())  # the next package is made in a later second: any "now" in it differs
    wait_until(lambda: int(time.time()) > packaged_at, "the clock stopped")

    # Another process, as another job would be.
    subprocess.run([sys.executable, "-c", (
        "import sys; from pathlib import Path; from job_containers.cores.package import package; "
        "sys.exit('error' in package(Path(sys.argv[1]), 'simple_bee_farming.qgs', Path(sys.argv[2])))"
    ), str(tmp_path / "elsewhere" / "project"), str(again)], cwd=ROOT, check=True, capture_output=True)

    assert readers.md5sums(again) == readers.md5sums(first)
    assert len(readers.md5sums(first)) == 2


def test_delta_project_packages_gpkg_geojson_and_csv_offline_with_source_keys(qgis, delta_project, tmp_path):
    out = tmp_path / "package"

    outputs = succeeded(package(delta_project, "project.qgs", out))

    # Every layer has a key (the GeoPackages their fid, GeoJSON and CSV a `fid` field): all offline,
    # nothing copied beside data.gpkg.
    assert sorted(readers.md5sums(out)) == ["data.gpkg", "project_qfield.qgs"]
    gpkg = out / "data.gpkg"
    layers = maplayers(out / "project_qfield.qgs")
    sources = {layer_id: layer.findtext("datasource") for layer_id, layer in layers.items()}
    assert len(sources) == 8 and all(source.startswith("./data.gpkg|") for source in sources.values())
    tables = {layer_id: source.split("layername=")[1] for layer_id, source in sources.items()}
    assert set(tables.values()) == readers.gpkg_tables(gpkg)
    for layer_id, source_table in DELTA_GPKG_LAYERS.items():
        assert readers.gpkg_fid_column(gpkg, tables[layer_id]) == "fid"
        assert readers.gpkg_column_values(gpkg, tables[layer_id], "fid") == readers.gpkg_column_values(
            delta_project / "testdata.gpkg", source_table, "fid")
        assert custom_properties(layers[layer_id])["QFieldSync/sourceDataPrimaryKeys"] == "fid"
    for layer_id, geojson in ((DELTA_POINTS_GEOJSON, "points"), (DELTA_POLYGONS_GEOJSON, "polygons")):
        # The source's `fid` is an ordinary field: kept as such, the table gets its own hidden feature id.
        assert readers.gpkg_fid_column(gpkg, tables[layer_id]) == "fid_1"
        source_keys = readers.ogr_values(delta_project / f"{geojson}.geojson", "fid")
        assert readers.gpkg_column_values(gpkg, tables[layer_id], "fid") == source_keys
        hidden = layers[layer_id].find("fieldConfiguration/field[@name='fid_1']/editWidget")
        assert hidden is not None and hidden.get("type") == "Hidden"
    assert readers.gpkg_column_values(gpkg, tables[DELTA_CSV], "fid") == ["1"]
    assert custom_properties(layers[DELTA_CSV])["remoteSource"] == "./nonspatial.csv|layername=nonspatial"
    assert feature_counts(outputs, "qfield_layer_data") == feature_counts(outputs, "qgis_layers_data")


def test_simple_project_drops_invalid_layers_and_copies_the_shapefile_read_only(qgis, simple_project,
                                                                                 tmp_path):
    out = tmp_path / "package"

    outputs = succeeded(package(simple_project, "project.qgs", out))

    packaged = out / "project_qfield.qgs"
    layers = maplayers(packaged)
    assert sorted(layers) == ["curved_polys20161130143036265", SHAPEFILE]
    assert not set(SPATIALITE_LAYERS) & set(readers.layer_tree_ids(packaged))
    assert not any(layer_id in packaged.read_text() for layer_id in SPATIALITE_LAYERS)
    # The whole shapefile set (.shp .shx .dbf .prj .cpg .qpj), byte for byte.
    shapefile_set = {n: md5 for n, md5 in readers.md5sums(simple_project).items() if "france_parts" in n}
    packaged_files = readers.md5sums(out)
    assert len(shapefile_set) == 6
    assert {name: packaged_files.get(name) for name in shapefile_set} == shapefile_set
    shapefile = layers[SHAPEFILE]
    assert shapefile.findtext("datasource") == "./france_parts_shape.shp"
    assert shapefile.get("readOnly") == "1"
    assert custom_properties(shapefile)["QFieldSync/unsupported_source_pk"] == "1"
    assert readers.gpkg_count(out / "data.gpkg", "curved_polys") == 4
    with opened_in_qgis(packaged) as project:
        assert project.mapLayer(SHAPEFILE).readOnly()
        source_count = readers.ogr_count(simple_project / "france_parts_shape.shp")
        assert project.mapLayer(SHAPEFILE).featureCount() == source_count
        assert project.mapLayer("curved_polys20161130143036265").wkbType() == 10  # CurvePolygon survives
    assert outputs["qfield_layer_data"]["layers_by_id"][SHAPEFILE]["qfs_unsupported_source_pk"] == "1"


def test_localized_layers_stay_untouched_and_other_invalid_layers_go(qgis, testdata, tmp_path):
    shutil.copyfile(testdata / "app" / "simple_bumblebees_wrong_localized.qgs", tmp_path / "p.qgs")
    out = tmp_path / "package"

    outputs = succeeded(package(tmp_path, "p.qgs", out))

    original = maplayers(tmp_path / "p.qgs")
    packaged = maplayers(out / "p_qfield.qgs")
    names = {layer_id: layer.findtext("layername") for layer_id, layer in original.items()}
    assert sorted(names[layer_id] for layer_id in packaged) == [
        "Online OpenStreetMap", "apiary_valid_localized", "area_invalid_localized"]
    for layer_id in packaged:
        if names[layer_id].endswith("_localized"):
            assert ET.tostring(packaged[layer_id]) == ET.tostring(original[layer_id])
        else:  # the web layer: packaged as it is, with QField's properties
            assert packaged[layer_id].findtext("datasource") == original[layer_id].findtext("datasource")
            assert custom_properties(packaged[layer_id])["QFieldSync/remoteLayerId"] == layer_id
    assert sorted(readers.md5sums(out)) == ["p_qfield.qgs"]
    packaged_layers = outputs["qfield_layer_data"]["layers_by_id"].values()
    assert [layer["is_localized"] for layer in packaged_layers].count(True) == 2


def make_spatialite(path: Path) -> None:
    """The spatialite.db simple_project expects, with non-sequential primary keys."""
    dataset = ogr.GetDriverByName("SQLite").CreateDataSource(str(path), options=["SPATIALITE=YES"])
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    tables = (("somedata", ogr.wkbPoint, {30: "POINT(1 2)", 10: "POINT(3 4)", 20: "POINT(5 6)"}),
              ("somepolydata", ogr.wkbPolygon, {7: "POLYGON((0 0,1 0,1 1,0 0))"}))
    for table, kind, rows in tables:
        layer = dataset.CreateLayer(table, wgs84, kind, options=["FID=pkuid", "GEOMETRY_NAME=geom"])
        layer.CreateField(ogr.FieldDefn("label", ogr.OFTString))
        for fid, wkt in rows.items():
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetFID(fid)
            feature.SetField("label", f"n{fid}")
            feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
            layer.CreateFeature(feature)


def test_a_database_source_goes_offline_through_qgis_with_stable_keys(qgis, simple_project, tmp_path):
    make_spatialite(simple_project / "spatialite.db")

    outputs = succeeded(package(simple_project, "project.qgs", tmp_path / "first"))
    succeeded(package(simple_project, "project.qgs", tmp_path / "again"))

    gpkg = tmp_path / "first" / "data.gpkg"
    assert readers.gpkg_column_values(gpkg, "somedata", "pkuid") == [10, 20, 30]
    assert readers.gpkg_column_values(gpkg, "somedata", "label") == ["n10", "n20", "n30"]
    assert readers.gpkg_column_values(gpkg, "somepolydata", "pkuid") == [7]
    somedata = custom_properties(maplayers(tmp_path / "first" / "project_qfield.qgs")[SPATIALITE_LAYERS[0]])
    assert somedata["QFieldSync/sourceDataPrimaryKeys"] == "pkuid"
    assert somedata["remoteProvider"] == "spatialite"
    counts = feature_counts(outputs, "qfield_layer_data")
    assert [counts[layer_id] for layer_id in SPATIALITE_LAYERS] == [3, 1]
    assert readers.md5sums(tmp_path / "again") == readers.md5sums(tmp_path / "first")


def test_only_the_area_of_interest_is_copied_when_asked(qgis, delta_project, tmp_path):
    write_entries(delta_project / "project.qgs", {
        ("qfieldsync", "areaOfInterest"): "POLYGON((0 -1, 6 -1, 6 1, 0 1, 0 -1))",
        ("qfieldsync", "areaOfInterestCrs"): "EPSG:4326",
        ("qfieldsync", "offlineCopyOnlyAoi"): True,
    })

    outputs = succeeded(package(delta_project, "project.qgs", tmp_path / "package"))

    counts = feature_counts(outputs, "qfield_layer_data")
    assert counts[DELTA_POINTS_GEOJSON] == 2  # x = 1 and 5, not 9
    assert counts["points_xy_897d5ed7_b810_4624_abe3_9f7c0a93d6a1"] == 2
    assert counts[DELTA_CSV] == 1, "a table without geometry has no place to filter by"


def test_companion_files_and_data_dirs_are_packaged_but_attachments_are_not(qgis, bee_project, tmp_path):
    (tmp_path / "outside.txt").write_text("not the project's")
    for name, text in {"simple_bee_farming.qml": "plugin", "simple_bee_farming_de.qm": "de",
                       "assets/logo.png": "png", "data/notes/readme.txt": "notes", "DCIM/1.jpg": "photo",
                       "data/DCIM/2.jpg": "photo"}.items():
        (bee_project / name).parent.mkdir(parents=True, exist_ok=True)
        (bee_project / name).write_text(text)
    write_entries(bee_project / "simple_bee_farming.qgs", {
        ("QFieldSync", "dataDirs"): ["data", "..", "missing"],
        ("QFieldSync", "attachmentDirs"): ["DCIM", "data/DCIM"],
        ("Image", "ImagePath"): "assets/logo.png",
    })
    out = tmp_path / "package"

    feedback = package(bee_project, "simple_bee_farming.qgs", out)

    succeeded(feedback)
    expected = ["assets/logo.png", "data.gpkg", "data/notes/readme.txt", "simple_bee_farming_qfield.qgs",
                "simple_bee_farming_qfield.qml", "simple_bee_farming_qfield_de.qm"]
    assert sorted(readers.md5sums(out)) == expected
    assert feedback["steps"][3]["returns"]["files"] == expected
    assert (out / "simple_bee_farming_qfield_de.qm").read_text() == "de"


def test_a_qgz_project_is_packaged_as_a_qgs_with_its_auxiliary_storage(qgis, bee_project, tmp_path):
    with zipfile.ZipFile(bee_project / "bees.qgz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(bee_project / "simple_bee_farming.qgs", "bees.qgs")
        archive.writestr("bees.qgd", b"auxiliary storage")
    out = tmp_path / "package"

    outputs = succeeded(package(bee_project, "bees.qgz", out))

    assert sorted(readers.md5sums(out)) == ["bees_qfield.qgd", "bees_qfield.qgs", "data.gpkg"]
    assert feature_counts(outputs, "qfield_layer_data") == {APIARY: 35, FIELDS: 14}


def test_an_invalid_project_file_fails_cleanly_and_packages_nothing(qgis, delta_project, tmp_path):
    out = tmp_path / "package"

    feedback = package(delta_project, "broken.qgs", out)

    assert feedback["error_type"] == "INVALID_PROJECT_FILE" and "line 20" in feedback["error"]
    assert [step["stage"] for step in feedback["steps"]] == [2, 1, 0, 0, 0]
    assert feedback["outputs"] == {"start_qgis_app": {}}
    assert not out.exists() or not any(out.iterdir())
