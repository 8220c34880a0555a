"""The source checks a QGIS job applies before it opens any layer (job_containers/cores/sources.py): a
table of sources as project files spell them, written apart from the code, each allowed or
refused; and the host rule on its own (chalicelib/rules/job_hosts.py)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from chalicelib.rules.job_hosts import HostPolicy, Refused, Unreachable, is_public
from job_containers.cores.sources import Folders, SourceChecker

OUTSIDE = "outside the project's folder"
NOT_PUBLIC = "not a public internet address"

# (provider, datasource, None if allowed else a part of the reason)
CASES = [
    # Files of the project, however they are spelt.
    ("ogr", "./data.gpkg|layername=points", None),
    ("ogr", "data.gpkg", None),
    ("ogr", "sub/../data.gpkg|layername=points|subset=\"a\" = 1", None),
    ("ogr", "./data.gpkg|layername=t|subset=SELECT * FROM t", None),
    ("ogr", "./table.csv|option:AUTODETECT_TYPE=YES", None),
    ("ogr", "/vsizip/./archive.zip/inner.shp", None),
    ("ogr", "/vsizip/{./archive.zip}/inner.shp", None),
    ("gdal", "GPKG:./data.gpkg:raster", None),
    ("gdal", "./image.tif", None),
    ("delimitedtext", "file:./table.csv?type=csv&geomType=none", None),
    ("spatialite", "dbname='./db.sqlite' table=\"t\" (geom)", None),
    ("gpx", "./track.gpx?type=track", None),
    ("virtual", "?layer=ogr:.%2Fdata.gpkg%7Clayername%3Dpoints:points:&query=SELECT%20*%20FROM%20points",
     None),
    ("wms", "type=xyz&url=file:./tiles/%7Bz%7D/%7Bx%7D/%7By%7D.png", None),
    ("memory", "Point?crs=EPSG:4326&field=name:string", None),
    ("ogr", "localized:shared.gpkg|layername=apiary", None),
    # Files elsewhere on the worker.
    ("ogr", "/etc/passwd", OUTSIDE),
    ("ogr", "../../../../etc/passwd", OUTSIDE),
    ("ogr", "./link_out/passwd", OUTSIDE),  # a link in the folder pointing out of it
    ("ogr", "file:///etc/passwd", "not allowed"),
    ("ogr", "/vsizip//etc/archive.zip/inner.shp", OUTSIDE),
    ("ogr", "/vsizip/{/etc/archive.zip}/inner.shp", OUTSIDE),
    ("ogr", "/vsigzip//etc/x.gz", OUTSIDE),
    ("ogr", "/vsisubfile/0_100,/etc/passwd", OUTSIDE),
    ("gdal", "GPKG:/etc/x.gpkg:table", OUTSIDE),
    ("gdal", 'NETCDF:"/etc/x.nc":var', OUTSIDE),
    ("delimitedtext", "file:///etc/passwd?type=csv&delimiter=:&geomType=none", OUTSIDE),
    ("delimitedtext", "file:./%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd?type=csv", OUTSIDE),
    ("delimitedtext", "http://93.184.215.14/table.csv?type=csv", "not URLs"),
    ("spatialite", "dbname='/etc/x.sqlite' table=\"t\" (geom)", OUTSIDE),
    ("gpx", "/etc/track.gpx?type=track", OUTSIDE),
    ("mdal", '"/etc/mesh.nc":var', OUTSIDE),
    ("virtual",
     "?layer=delimitedtext:file%3A%2F%2F%2Fetc%2Fpasswd%3Ftype%3Dcsv:p:UTF-8&query=SELECT%20*%20FROM%20p",
     OUTSIDE),
    ("virtual", "?layer=ogr:%2Fetc%2Fpasswd:p:UTF-8", OUTSIDE),
    ("virtualraster", "?crs=EPSG:4326&extent=0,0,1,1&width=1&height=1&formula=%22a@1%22&a:uri=/etc/x.tif"
                      "&a:provider=gdal", OUTSIDE),
    ("wms", "type=xyz&url=file:///etc/%7Bz%7D.png", OUTSIDE),
    ("vectortile", "type=mbtiles&url=/etc/x.mbtiles", OUTSIDE),
    ("ogr", "localized:../../etc/passwd", "shared datasets"),
    ("ogr", "localized:/etc/passwd", "shared datasets"),
    # What OGR itself would read beyond the named file.
    ("ogr", "./layers.vrt", "virtual files"),
    ("gdal", "/vsizip/./archive.zip/mosaic.VRT", "virtual files"),
    ("ogr", "./table.csv|subset=SELECT * FROM table JOIN '/etc/passwd'.passwd ON 1=1",
     "GeoPackage and SQLite"),
    ("ogr", "./data.gpkg|option:PRELUDE_STATEMENTS=ATTACH DATABASE '/etc/x' AS x", "PRELUDE_STATEMENTS"),
    ("gdal", "<GDAL_WMS><Service name=\"TMS\"><ServerUrl>http://127.0.0.1/</ServerUrl></Service></GDAL_WMS>",
     "Inline GDAL XML"),
    # The network: private, loopback, link-local (the credentials endpoint), the cloud's storage.
    ("ogr", "/vsicurl/http://127.0.0.1:5000/bucket/key", NOT_PUBLIC),
    ("ogr", "/vsicurl/http://169.254.170.2/v2/credentials/x", NOT_PUBLIC),
    ("ogr", "/vsicurl?url=http://169.254.169.254/latest/meta-data/&use_head=no", NOT_PUBLIC),
    ("ogr", "/vsicurl/file:///etc/passwd", "not an http(s) URL"),
    ("ogr", "/vsicurl/ftp://93.184.215.14/x", "not an http(s) URL"),
    ("ogr", "/vsizip//vsicurl/http://10.0.0.8/a.zip/b.shp", NOT_PUBLIC),
    ("ogr", "/vsis3/bucket/projects/other/files/data.gpkg", "cloud storage"),
    ("gdal", "/vsigs/bucket/x.tif", "cloud storage"),
    ("ogr", "/vsiaz/container/x", "cloud storage"),
    ("ogr", "/vsimem/x.gpkg", "not allowed"),
    ("ogr", "http://192.168.1.1/x.geojson", NOT_PUBLIC),
    ("ogr", "WFS:http://[::1]:8080/wfs", NOT_PUBLIC),
    ("ogr", "PG:host=10.0.0.5 dbname=x user=y", NOT_PUBLIC),
    ("ogr", "PG:postgresql://user@172.16.0.1/db", NOT_PUBLIC),
    ("ogr", "MySQL:db,host=93.184.215.14", "not allowed"),
    ("wms", "crs=EPSG:3857&type=xyz&url=http://127.0.0.1:9/%7Bz%7D/%7Bx%7D/%7By%7D.png", NOT_PUBLIC),
    ("wms", "crs=EPSG:4326&format=image/png&layers=a&styles&url=http://[::ffff:127.0.0.1]/wms", NOT_PUBLIC),
    ("WFS", "typename='a' url='http://100.64.0.1/wfs' version='auto'", NOT_PUBLIC),
    ("OAPIF", "typename='a' url='http://169.254.170.2/ogc'", NOT_PUBLIC),
    ("arcgisfeatureserver", "crs='EPSG:4326' url='http://10.1.1.1/rest/services/x/FeatureServer/0'",
     NOT_PUBLIC),
    ("arcgismapserver", "format='PNG' layer='0' url='http://127.0.0.2/x/MapServer'", NOT_PUBLIC),
    ("wcs", "url=http://127.0.0.1/wcs&identifier=x", NOT_PUBLIC),
    ("vectortile", "type=xyz&url=http://127.0.0.1/%7Bz%7D/%7Bx%7D/%7By%7D.pbf", NOT_PUBLIC),
    ("postgres", "dbname='x' host=127.0.0.1 port=5432 user='u' table=\"a\".\"b\" (geom)", NOT_PUBLIC),
    ("postgres", "dbname='x' user='u' table=\"a\".\"b\" (geom)", "names no host"),
    ("mssql", "dbname='x' host=10.0.0.1 user='a'", NOT_PUBLIC),
    ("wms", "type=xyz&url=gopher://93.184.215.14/x", "not an http(s) URL"),
    # Public hosts (addresses: no name to resolve here) are allowed.
    ("ogr", "/vsicurl/https://93.184.215.14/data.geojson", None),
    ("wms", "crs=EPSG:3857&type=xyz&url=https://93.184.215.14/%7Bz%7D/%7Bx%7D/%7By%7D.png", None),
    ("postgres", "dbname='x' host=93.184.215.14 port=5432 user='u' table=\"a\".\"b\" (geom)", None),
    # Anything else.
    ("grass", "/some/location/mapset", "not allowed"),
]


@pytest.fixture
def checker(qgis, tmp_path) -> SourceChecker:
    project = tmp_path / "project"
    (project / "tiles").mkdir(parents=True)
    (project / "link_out").symlink_to("/etc")
    return SourceChecker(Folders(project, tmp_path / "shared"), HostPolicy())


def _reason(checker: SourceChecker, provider: str, datasource: str) -> str | None:
    from job_containers.cores.project_file import LayerSource

    refused = checker.refusals([LayerSource("layer_id_0000001", provider, datasource)])
    return str(refused["layer_id_0000001"]) if refused else None


@pytest.mark.parametrize(("provider", "datasource", "refused"), CASES)
def test_a_source_is_allowed_or_refused_with_its_reason(checker, provider, datasource, refused):
    reason = _reason(checker, provider, datasource)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason, reason


def test_a_layer_embedded_from_another_project_file_is_refused(checker):
    from job_containers.cores.project_file import LayerSource

    refused = checker.refusals([LayerSource("embedded_layer_01", "", "", embedded=True)])
    assert "embedded from another project file" in str(refused["embedded_layer_01"])


def test_a_database_service_or_a_host_that_does_not_resolve_is_not_tried(checker):
    from job_containers.cores.project_file import LayerSource

    for datasource in ("service='geodb1' key='id' table=\"a\".\"b\" (geom)",
                       "dbname='x' host=no-such-host.invalid port=5432 table=\"a\".\"b\" (geom)"):
        layer = LayerSource("db_layer_000001", "postgres", datasource)
        refusal = checker.refusals([layer])["db_layer_000001"]
        assert isinstance(refusal, Unreachable) and refusal.code == "invalid_dataprovider"
        assert str(refusal).startswith("Unable to connect to")


def test_a_web_host_that_does_not_resolve_is_left_to_the_proxy(checker):
    """The egress proxy resolves it again when a request is made, and refuses it then."""
    assert _reason(checker, "wms", "type=xyz&url=http://no-such-host.invalid/%7Bz%7D.png") is None


@pytest.mark.parametrize(("allowed", "datasource", "refused"), [
    (("10.0.0.0/8",), "PG:host=10.1.2.3 dbname=x", None),
    (("10.0.0.0/8",), "PG:host=172.16.0.1 dbname=x", NOT_PUBLIC),
    (("localhost",), "/vsicurl/http://localhost:8080/x.geojson", None),
    (("127.0.0.1",), "/vsicurl/http://127.0.0.1:8080/x.geojson", None),
    # The AWS stand-in stays out of reach even when loopback is allowed.
    (("127.0.0.1",), "/vsicurl/http://127.0.0.1:5000/bucket/key", "a service of this server"),
])
def test_the_operator_allows_named_private_hosts(qgis, tmp_path, allowed, datasource, refused):
    checker = SourceChecker(Folders(tmp_path), HostPolicy(allowed, (("127.0.0.1", 5000),)))
    reason = _reason(checker, "ogr", datasource)
    assert reason is None if refused is None else refused in reason


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True), ("2001:4860:4860::8888", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.31.255.255", False), ("192.168.0.1", False),
    ("169.254.170.2", False), ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False),
    ("224.0.0.1", False), ("::1", False), ("fe80::1", False), ("fd00::1", False),
    ("::ffff:127.0.0.1", False), ("64:ff9b::7f00:1", False), ("2002:7f00:1::", False),
    ("64:ff9b::808:808", True),
])
def test_only_internet_addresses_are_public(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


def test_a_host_with_one_private_address_among_public_ones_is_refused():
    addresses = [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(Refused, match=NOT_PUBLIC):
        HostPolicy().addresses("rebinding.example", 80, addresses)


def test_checking_a_hundred_layers_resolves_each_name_once_and_all_at_once(checker, monkeypatch):
    """The checks run on every job; what could make them cost more than QGIS's own work is the
    network: the names a project's layers use are resolved once each, together (a project naming
    many hosts waits for the slowest, not for their sum)."""
    from chalicelib.rules import job_hosts
    from job_containers.cores import sources
    from job_containers.cores.project_file import LayerSource

    monkeypatch.setattr(sources, "_resolved", {})  # nothing resolved by earlier tests
    asked = []
    resolve_all = job_hosts.resolve_all
    monkeypatch.setattr(job_hosts, "resolve_all", lambda hosts, *args: asked.append(set(hosts))
                        or resolve_all(hosts, *args))
    hosts = [f"93.184.215.{n}" for n in range(10, 15)]  # addresses: nothing to ask a DNS server
    layers = [LayerSource(f"layer_{n:010d}", "ogr", f"./data.gpkg|layername=t{n}") for n in range(50)]
    layers += [LayerSource(f"layer_{n:010d}", "ogr", f"/vsicurl/http://{hosts[n % 5]}/t{n}.geojson")
               for n in range(50, 100)]
    assert checker.refusals(layers) == {}
    assert checker.refusals(layers) == {}  # a second look (the package job's) asks nothing again
    assert asked == [set(hosts)]


def test_sources_of_the_shared_test_projects_are_allowed(checker):
    """Every layer of the realistic projects the suite uses passes (none names anything outside)."""
    from job_containers.cores.feedback import InvalidProjectFile
    from job_containers.cores.project_file import check_project_file
    from tests import shared_data

    for project in sorted(Path(shared_data.testdata()).rglob("*.qgs")):
        try:
            head = check_project_file(project)
        except InvalidProjectFile:
            continue  # broken on purpose
        refused = SourceChecker(Folders(project.parent), HostPolicy()).refusals(head.layers)
        unexpected = {layer: str(reason) for layer, reason in refused.items()
                      if not str(reason).startswith("Unable to connect to")}
        assert unexpected == {}, project.name
