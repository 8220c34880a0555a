"""A QGIS project can touch nothing but its own project: hostile projects uploaded by an ordinary
user, run through the API and the real worker (each QGIS core in its child process), and what
came back checked as the attacker would see it (the job as `GET jobs/<id>/` returns it, the
package's files, the project's data read with sqlite3) and as the victim would (a file's
checksum, a listener's connections, a marker file).

Contract: a layer whose source is refused is reported invalid with `error_code`
"refused_datasource" and a reason, is never opened, and does not fail process_projectfile.
Refused: local paths outside the project's folder, however spelled, and remote hosts on
loopback, link-local or private addresses (unless the operator allows them with
`job_allowed_private_hosts`), and GDAL's cloud storage handlers. The QGIS child gets a minimal
environment, deltas edit nothing outside the job's folder, a server that never answers does not
hold the worker, and no job message names a path on the server.

Several cases share one job (one project holding a layer per case): the module's fixtures run
it in a moto of their own, entered and left within the fixture, and the tests read the result.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sqlite3
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from moto import mock_aws
from osgeo import gdal

from tests import shared_data
from tests.conftest import PASSWORD
from tests.files_helpers import upload
from tests.hostile_projects import Layer, Listener, assert_refused, canary, gpkg, qgs
from tests.jobs.delta_data import delta
from tests.jobs_helpers import fetch, run_jobs
from tests.test_deltas import push, statuses

gdal.UseExceptions()

# Enough `..` to climb from any job folder to `/`: the rest of the path is then absolute.
UP_TO_ROOT = "../" * 24
DELIMITED = "type=csv&detectTypes=yes&geomType=none&subsetIndex=no&watchFile=no"


# --- running jobs --------------------------------------------------------------------------------

@contextmanager
def own_aws(username: str = "mallory") -> Iterator:
    """A fresh in-process AWS with one user, for a module fixture's shared job: entered and left
    within the fixture, so that it never overlaps a test's own `aws`."""
    from app import app, handler
    from chalicelib.services import accounts
    from devstack.gateway import ApiGateway
    from devstack.resources import ensure_all
    from tests.client import ApiClient

    with mock_aws():
        ensure_all()
        accounts.create_user(username, PASSWORD, email=f"{username}@example.com")
        yield ApiClient(ApiGateway(app, handler)).login(username, PASSWORD)


def upload_project(client, name: str, files: dict[str, bytes]) -> str:
    """A new project with `files` uploaded, the QGIS project last (its upload starts
    process_projectfile); its id."""
    pid = client.create_project(name)["id"]
    for file_name in sorted(files, key=lambda n: n.endswith((".qgs", ".qgz"))):
        reply = upload(client, pid, file_name, files[file_name])
        assert reply.status == 201, reply.content
    return pid


def jobs_of(client, pid: str, job_type: str | None = None) -> list[dict]:
    """The project's jobs, in full (`GET jobs/<id>/`), oldest first."""
    listed = client.get(f"jobs/?project_id={pid}").json()
    details = [client.get(f"jobs/{job['id']}/").json() for job in listed
               if job_type is None or job["type"] == job_type]
    return sorted(details, key=lambda job: job["created_at"])


def processed(client, name: str, files: dict[str, bytes]) -> dict:
    """Upload the project, let the worker process it; process_projectfile's job."""
    pid = upload_project(client, name, files)
    run_jobs()
    (job,) = jobs_of(client, pid, "process_projectfile")
    assert job["status"] in ("finished", "failed"), job["status"]
    return job


def layers_of(job: dict, step: str = "project_details") -> dict[str, dict]:
    outputs = (job.get("feedback") or {}).get("outputs", {})
    if step == "project_details":
        return outputs["project_details"]["project_details"]["layers_by_id"]
    return outputs[step]["layers_by_id"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def count_rows(path: Path, table: str) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]


# --- finding 1: any file on the worker can be read ------------------------------------------------

@dataclass(frozen=True)
class Secrets:
    """Files outside any project, each holding `text` as a field name and as a value."""
    folder: Path
    text: str

    @property
    def csv(self) -> Path:
        return self.folder / "secret.csv"

    @property
    def geojson(self) -> Path:
        return self.folder / "secret.geojson"

    @property
    def gpkg(self) -> Path:
        return self.folder / "secret.gpkg"

    @property
    def zip(self) -> Path:
        return self.folder / "secret.zip"

    @property
    def tif(self) -> Path:
        return self.folder / "secret.tif"

    def spellings(self) -> dict[str, str]:
        csv_url = f"file://{self.csv}?{DELIMITED}"
        return {
            "csv": str(self.csv), "geojson": str(self.geojson), "gpkg": str(self.gpkg), "zip": str(self.zip),
            "tif": str(self.tif), "geojson_size": str(self.geojson.stat().st_size),
            "geojson_from_root": str(self.geojson).lstrip("/"), "csv_from_root": str(self.csv).lstrip("/"),
            "csv_url_encoded": quote(str(self.csv)).replace("secret", "%73%65cret"),
            "csv_url_quoted": quote(csv_url, safe=""), "geojson_quoted": quote(str(self.geojson), safe=""),
        }


@pytest.fixture(scope="module")
def secrets(tmp_path_factory) -> Secrets:
    found = Secrets(tmp_path_factory.mktemp("not-a-project"), canary())
    found.csv.write_text(f"{found.text}_field,x,y\n{found.text}_value,1,2\n")
    found.geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {f"{found.text}_field": f"{found.text}_value"},
        "geometry": {"type": "Point", "coordinates": [1, 2]}}]}))
    gpkg(found.gpkg, "secret", {f"{found.text}_field": f"{found.text}_value"})
    with zipfile.ZipFile(found.zip, "w") as archive:
        archive.write(found.geojson, "secret.geojson")
    raster = gdal.GetDriverByName("GTiff").Create(str(found.tif), 4, 4, 1)
    raster.SetGeoTransform([0, 1, 0, 4, 0, -1])
    raster.SetMetadataItem("SECRET", found.text)
    raster = None
    return found


# Every spelling of "a file outside the project" the attacker tried: case → (provider, layer kind,
# datasource), with the secret files' paths as placeholders (`Secrets.spellings`).
VIRTUAL_QUERY = f":s:UTF-8&query={quote('SELECT * FROM s')}"
OUTSIDE_SOURCES = {
    "ogr_absolute_path": ("ogr", "vector", "{geojson}"),
    "ogr_dot_dot": ("ogr", "vector", "./" + UP_TO_ROOT + "{geojson_from_root}"),
    "ogr_layername_suffix": ("ogr", "vector", "{gpkg}|layername=secret"),
    "ogr_through_a_symlink": ("ogr", "vector", "/proc/self/root{geojson}"),
    "ogr_vsizip_member": ("ogr", "vector", "/vsizip/{zip}/secret.geojson"),
    "ogr_vsisubfile": ("ogr", "vector", "/vsisubfile/0_{geojson_size},{geojson}"),
    "delimitedtext_file_url": ("delimitedtext", "vector", "file://{csv}?" + DELIMITED),
    "delimitedtext_url_encoded": ("delimitedtext", "vector", "file://{csv_url_encoded}?" + DELIMITED),
    "delimitedtext_dot_dot": ("delimitedtext", "vector",
                              "file:./" + UP_TO_ROOT + "{csv_from_root}?" + DELIMITED),
    "delimitedtext_etc_passwd": ("delimitedtext", "vector",
                                 "file:///etc/passwd?type=csv&delimiter=:&useHeader=yes&geomType=none"),
    "virtual_over_delimitedtext": ("virtual", "vector",
                                   "?layer=delimitedtext:{csv_url_quoted}" + VIRTUAL_QUERY),
    "virtual_over_ogr": ("virtual", "vector", "?layer=ogr:{geojson_quoted}" + VIRTUAL_QUERY),
    "spatialite_outside": ("spatialite", "vector", "dbname='{gpkg}' table=\"secret\" (geom)"),
    "gdal_raster_outside": ("gdal", "raster", "{tif}"),
}


def outside_sources(secrets: Secrets) -> list[Layer]:
    spellings = secrets.spellings()
    return [Layer(case, source.format(**spellings), provider, kind=kind)
            for case, (provider, kind, source) in OUTSIDE_SOURCES.items()]


INSIDE = Layer("inside_the_project", "./inside.gpkg|layername=inside", "ogr")


@pytest.fixture(scope="module")
def outside_files_job(secrets, tmp_path_factory) -> dict:
    """One project with a layer per way of naming a file outside it (and one inside), processed."""
    inside = gpkg(tmp_path_factory.mktemp("inside") / "inside.gpkg", "inside", {"name": "ok"}, rows=3)
    layers = [*outside_sources(secrets), INSIDE]
    with own_aws() as client:
        return processed(client, "outside", {"inside.gpkg": inside.read_bytes(),
                                             "project.qgs": qgs(layers).encode()})


@pytest.mark.parametrize("case", list(OUTSIDE_SOURCES))
def test_a_layer_over_a_file_outside_the_project_is_refused(outside_files_job, secrets, case):
    # The attack: a layer whose source names a file the worker can read but the project does
    # not hold; QGIS reported its first line as field names (and its rows when packaged).
    assert outside_files_job["status"] == "finished", outside_files_job["output"]
    layer = layers_of(outside_files_job)[case]
    assert_refused(layer)
    assert not layer.get("fields"), layer["fields"]
    assert layer.get("feature_count") in (None, 0)
    assert secrets.text not in json.dumps(outside_files_job)


def test_a_layer_inside_the_project_still_opens(outside_files_job):
    layer = layers_of(outside_files_job)[INSIDE.id]
    assert (layer["is_valid"], layer["error_code"], layer["feature_count"]) == (True, "no_error", 3)


def test_a_package_never_copies_a_file_from_outside_the_project(alice, secrets):
    # The attack: the same sources with a QFieldSync cloud action that copies data into the
    # package: `offline` writes the features into data.gpkg, `copy` copies the file itself.
    csv_url = f"file://{secrets.csv}?{DELIMITED}"
    layers = [
        Layer("virtual_offline", f"?layer=delimitedtext:{quote(csv_url, safe='')}:s:UTF-8"
              f"&query={quote('SELECT rowid AS fid, * FROM s')}&uid=fid", "virtual", cloud_action="offline"),
        Layer("delimitedtext_offline", csv_url, "delimitedtext", cloud_action="offline"),
        Layer("ogr_offline", f"{secrets.gpkg}|layername=secret", "ogr", cloud_action="offline"),
        Layer("ogr_copy_layer", str(secrets.geojson), "ogr", cloud_action="copy"),
        Layer("raster_copy", str(secrets.tif), "gdal", kind="raster", cloud_action="copy"),
    ]
    # and a map decoration image, which packaging copies too
    image = f'<Image><ImagePath type="QString">{secrets.csv}</ImagePath></Image>'
    pid = upload_project(alice, "package", {"project.qgs": qgs(layers, image).encode()})
    job_id = alice.post("jobs/", json={"project_id": pid, "type": "package"}).json()["id"]
    run_jobs()

    job = alice.get(f"jobs/{job_id}/").json()
    assert job["status"] in ("finished", "failed")
    if job["status"] == "finished":
        packaged = {item["name"]: fetch(alice, f"packages/{pid}/latest/files/{item['name']}/")
                    for item in alice.get(f"packages/{pid}/latest/").json()["files"]}
        assert [name for name, content in packaged.items() if secrets.text.encode() in content] == []
    assert secrets.text not in json.dumps(job)
    for layer in layers:
        assert_refused(layers_of(job, "qgis_layers_data")[layer.id])


# --- finding 3: the worker fetches any URL (SSRF) -------------------------------------------------

SERVED = canary()
HTTP_BODY = f"{SERVED}_field,x\n{SERVED}_value,1\n".encode()
# A source per provider that fetches over the network: (provider, layer kind, datasource) with
# `{server}` for host:port, or `{host}` and `{port}`. Tile URLs are percent-encoded as QGIS saves them.
NETWORK_SOURCES = {
    "wms": ("wms", "raster", "contextualWMSLegend=0&crs=EPSG:4326&dpiMode=7&featureCount=10&format=image/png"
            "&layers=a&styles=&url=http://{server}/wms"),
    "xyz": ("wms", "raster", "type=xyz&url=http://{server}/%7Bz%7D/%7Bx%7D/%7By%7D.png&zmax=19&zmin=0"),
    "wfs": ("WFS", "vector", "url='http://{server}/wfs' typename='a' version='auto'"),
    "oapif": ("OAPIF", "vector", "url='http://{server}/ogc' typename='a'"),
    "arcgisfeatureserver": ("arcgisfeatureserver", "vector",
                            "url='http://{server}/rest/services/a/FeatureServer/0'"),
    "arcgismapserver": ("arcgismapserver", "raster",
                        "format='PNG32' layer='0' url='http://{server}/rest/services/a/MapServer'"),
    "wcs": ("wcs", "raster", "crs=EPSG:4326&format=image/tiff&identifier=a&url=http://{server}/wcs"),
    "vectortile": ("vectortile", "vector-tile", "type=xyz&url=http://{server}/%7Bz%7D/%7Bx%7D/%7By%7D.pbf"
                   "&zmax=14&zmin=0"),
    "gdal_vsicurl": ("gdal", "raster", "/vsicurl/http://{server}/a.tif"),
    "ogr_vsicurl": ("ogr", "vector", "/vsicurl/http://{server}/a.csv"),
    "ogr_vsicurl_streaming": ("ogr", "vector", "/vsicurl_streaming/http://{server}/a.csv"),
    "ogr_http": ("ogr", "vector", "http://{server}/a.csv"),
    "postgres": ("postgres", "vector", "dbname='gis' host={host} port={port} sslmode=disable user='u' "
                 "password='p' table=\"public\".\"t\" (geom)"),
}
PROVIDERS = list(NETWORK_SOURCES)


def network_layer(case: str, host: str, port: int, layer_id: str | None = None) -> Layer:
    provider, kind, source = NETWORK_SOURCES[case]
    server = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return Layer(layer_id or f"{case}_layer_id", source.format(server=server, host=host, port=port),
                 provider, kind=kind)


# Ways to name loopback that a check of the host's spelling misses; `{port}` is the listener's.
LOOPBACK_SPELLINGS = {
    "localhost": "http://localhost:{port}/a.csv",
    "localhost_in_capitals": "http://LOCALHOST:{port}/a.csv",
    "short_form": "http://127.1:{port}/a.csv",
    "decimal": "http://2130706433:{port}/a.csv",
    "hexadecimal": "http://0x7f000001:{port}/a.csv",
    "other_loopback_address": "http://127.0.0.2:{port}/a.csv",
    "any_address": "http://0.0.0.0:{port}/a.csv",
    "ipv6_loopback": "http://[::1]:{port}/a.csv",
    "ipv4_mapped_ipv6": "http://[::ffff:127.0.0.1]:{port}/a.csv",
    "userinfo": "http://maps.example.com@127.0.0.1:{port}/a.csv",
}
LISTEN_ON = {"other_loopback_address": "127.0.0.2", "ipv6_loopback": "::1", "any_address": "0.0.0.0"}


@pytest.fixture(scope="module")
def loopback_job() -> Iterator[tuple[dict, dict[str, Listener]]]:
    """One project with a layer per network provider and per spelling of loopback, each naming a
    listener of its own that answers every request with the canary; processed."""
    listeners = {case: Listener(HTTP_BODY) for case in PROVIDERS}
    listeners.update({case: Listener(HTTP_BODY, host=LISTEN_ON.get(case, "127.0.0.1"))
                      for case in LOOPBACK_SPELLINGS})
    try:
        layers = [network_layer(case, "127.0.0.1", listeners[case].port) for case in PROVIDERS]
        layers += [Layer(f"{case}_layer_id", url.format(port=listeners[case].port), "ogr")
                   for case, url in LOOPBACK_SPELLINGS.items()]
        with own_aws() as client:
            job = processed(client, "loopback", {"project.qgs": qgs(layers).encode()})
        yield job, listeners
    finally:
        for listener in listeners.values():
            listener.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_layer_naming_a_loopback_server_is_refused_and_never_connects(loopback_job, provider):
    # The attack: the worker as a proxy into the server's own network; the listener's answer
    # came back as field names (and, packaged, in data.gpkg).
    job, listeners = loopback_job
    assert job["status"] == "finished", job["output"]
    assert listeners[provider].connections == [], "the worker connected to a loopback address"
    assert_refused(layers_of(job)[f"{provider}_layer_id"])
    assert SERVED not in json.dumps(job)


@pytest.mark.parametrize("spelling", list(LOOPBACK_SPELLINGS))
def test_loopback_is_refused_however_the_host_is_spelled(loopback_job, spelling):
    job, listeners = loopback_job
    assert listeners[spelling].connections == [], "the worker connected to a loopback address"
    assert_refused(layers_of(job)[f"{spelling}_layer_id"])


# Private, link-local and cloud metadata addresses (unreachable here, so only the layers' reports
# tell), and GDAL's cloud storage handlers, which the worker's credentials would sign for.
PRIVATE_SOURCES = {
    "private_10": network_layer("ogr_http", "10.0.0.1", 80, "private_10_layer_id"),
    "private_172": network_layer("gdal_vsicurl", "172.16.0.1", 80, "private_172_layer_id"),
    "private_192": network_layer("wms", "192.168.0.1", 80, "private_192_layer_id"),
    "cloud_metadata": network_layer("ogr_http", "169.254.169.254", 80, "cloud_metadata_layer_id"),
    "ipv6_unique_local": network_layer("ogr_http", "fd00::1", 80, "ipv6_unique_local_layer_id"),
    "ipv6_link_local": network_layer("ogr_http", "fe80::1", 80, "ipv6_link_local_layer_id"),
    "postgres_private": network_layer("postgres", "10.0.0.1", 5432, "postgres_private_layer_id"),
    "vsis3": Layer("vsis3_layer_id", "/vsis3/qfc-test-files/projects/a.gpkg|layername=a", "ogr"),
    "vsis3_streaming": Layer("vsis3_streaming_layer_id", "/vsis3_streaming/bucket/a.csv", "ogr"),
    "vsigs": Layer("vsigs_layer_id", "/vsigs/bucket/a.gpkg", "ogr"),
    "vsiaz": Layer("vsiaz_layer_id", "/vsiaz/container/a.gpkg", "ogr"),
    "vsiadls": Layer("vsiadls_layer_id", "/vsiadls/filesystem/a.gpkg", "ogr"),
    "vsioss": Layer("vsioss_layer_id", "/vsioss/bucket/a.gpkg", "ogr"),
    "vsiswift": Layer("vsiswift_layer_id", "/vsiswift/bucket/a.gpkg", "ogr"),
    "vsis3_raster": Layer("vsis3_raster_layer_id", "/vsis3/bucket/a.tif", "gdal", kind="raster"),
}


@pytest.fixture(scope="module")
def private_job() -> dict:
    """One project with a layer per private address and cloud storage handler, processed."""
    from chalicelib import config

    with config.override(job_timeout_seconds=120), own_aws() as client:
        return processed(client, "private", {"project.qgs": qgs(list(PRIVATE_SOURCES.values())).encode()})


@pytest.mark.parametrize("case", list(PRIVATE_SOURCES))
def test_private_addresses_and_cloud_storage_are_refused(private_job, case):
    assert private_job["status"] == "finished", private_job["output"]
    assert_refused(layers_of(private_job)[PRIVATE_SOURCES[case].id])


def test_a_redirect_to_a_refused_host_is_not_followed(alice, override_settings):
    # The attack: a host the operator allows answers with a redirect into loopback.
    override_settings(job_allowed_private_hosts=("127.0.0.2",))
    cases = ("ogr_http", "gdal_vsicurl", "wms")
    targets = {case: Listener(HTTP_BODY) for case in cases}
    redirects = {case: Listener(redirect_to=f"http://127.0.0.1:{target.port}/a.csv", host="127.0.0.2")
                 for case, target in targets.items()}
    try:
        layers = [network_layer(case, "127.0.0.2", redirects[case].port) for case in cases]
        job = processed(alice, "redirect", {"project.qgs": qgs(layers).encode()})
    finally:
        for listener in [*targets.values(), *redirects.values()]:
            listener.close()
    assert job["status"] == "finished", job["output"]
    assert all(listener.connections for listener in redirects.values()), "an allowed host was not asked"
    assert {case: len(target.connections) for case, target in targets.items()} == dict.fromkeys(cases, 0)
    assert SERVED not in json.dumps(job)


# --- finding 6: one user can starve everyone -----------------------------------------------------

def test_a_server_that_never_answers_does_not_hold_the_worker(users, override_settings):
    # The attack: layers over a server that accepts connections and never answers held a worker
    # for the whole job timeout (600 s) while every other project's jobs waited. (The job timeout
    # is lowered so that the attack, if it works, fails the test in 3 minutes, not 10.)
    override_settings(job_allowed_private_hosts=("127.0.0.1",), job_timeout_seconds=180)
    mallory, bob = users("mallory"), users("bob")
    cases = ("gdal_vsicurl", "wms", "xyz")
    silent = {case: Listener(answer=False) for case in cases}
    try:
        layers = [network_layer(case, "127.0.0.1", silent[case].port) for case in cases]
        hostile = upload_project(mallory, "silent", {"project.qgs": qgs(layers).encode()})
        other = upload_project(bob, "waiting", {
            "project.qgs": (shared_data.testdata() / "app" / "self_contained.qgs").read_bytes()})
        run_jobs()
        reached = [case for case, listener in silent.items() if listener.connections]
    finally:
        for listener in silent.values():
            listener.close()
    assert reached, "the allowed host was never asked: the test shows nothing"
    (held,) = jobs_of(mallory, hostile)
    (waiting,) = jobs_of(bob, other)
    assert held["status"] in ("finished", "failed") and waiting["status"] == "finished"
    assert seconds(held["started_at"], held["finished_at"]) < 60, held["output"]
    assert seconds(held["finished_at"], waiting["finished_at"]) < 30


def seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end.replace("Z", "+00:00"))
            - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()


# --- findings 2 and 4: deltas ------------------------------------------------------------------

def create_delta(layer_id: str, attributes: dict) -> dict:
    return delta("create", layer_id, str(uuid.uuid4().int % 10**6),
                 new={"geometry": "POINT(5 5)", "attributes": attributes})


def push_deltas(client, pid: str, deltas: list[dict]) -> str:
    deltafile_id = str(uuid.uuid4())
    body = {"deltas": deltas, "files": [], "id": deltafile_id, "project": pid, "version": "1.0"}
    assert push(client, pid, body).status == 200
    run_jobs()
    return deltafile_id


def test_a_field_default_cannot_read_the_workers_environment(alice, monkeypatch, tmp_path):
    # The attack: a default value `env('…')`, evaluated when a create delta is applied, wrote the
    # worker's environment variables (credentials among them) into the data.
    secret = canary()
    monkeypatch.setenv("QFC_CANARY_SECRET", secret)
    data = gpkg(tmp_path / "notes.gpkg", "notes", {"note": "first", "leak": "", "aws": ""})
    layer = Layer("notes_layer_id", "./notes.gpkg|layername=notes", "ogr",
                  defaults={"leak": "env('QFC_CANARY_SECRET')", "aws": "env('AWS_SECRET_ACCESS_KEY')"})
    pid = upload_project(alice, "env", {"notes.gpkg": data.read_bytes(),
                                        "project.qgs": qgs([layer]).encode()})
    run_jobs()

    deltafile_id = push_deltas(alice, pid, [create_delta(layer.id, {"note": "second"})])

    assert statuses(alice, pid, deltafile_id) == ["STATUS_APPLIED"]  # the default was evaluated
    edited = tmp_path / "edited.gpkg"
    edited.write_bytes(fetch(alice, f"files/{pid}/notes.gpkg/"))
    with sqlite3.connect(f"file:{edited}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT note, leak, aws FROM notes ORDER BY fid").fetchall()
    assert [row[0] for row in rows] == ["first", "second"]
    assert secret not in repr(rows) and rows[-1][1] in (None, "")
    assert rows[-1][2] in (None, "")  # no credential either
    everything = json.dumps([jobs_of(alice, pid), alice.get(f"deltas/{pid}/").json()])
    assert secret not in everything


def test_a_delta_never_edits_a_file_outside_the_job_folder(alice, tmp_path):
    # The attack: a layer whose source is a GeoPackage outside the project, edited by a pushed
    # delta (its checksum changed, a row was added). SQLite refuses a path that climbs above `/`,
    # so the relative spelling is tried at every depth the job folder may have.
    victims = {name: gpkg(tmp_path / f"{name}.gpkg", "victim", {"name": "original"}, rows=2)
               for name in ("absolute", "dot_dot")}
    before = {name: sha256(path) for name, path in victims.items()}
    layers = [Layer("absolute_layer_id", f"{victims['absolute']}|layername=victim", "ogr")]
    layers += [Layer(f"dot_dot_{depth}_layer_id", "./" + "../" * depth + str(victims["dot_dot"]).lstrip("/")
                     + "|layername=victim", "ogr") for depth in range(1, 9)]
    pid = upload_project(alice, "outside", {"project.qgs": qgs(layers).encode()})
    run_jobs()

    deltafile_id = push_deltas(alice, pid, [create_delta(layer.id, {"name": "added"}) for layer in layers])

    assert {name: count_rows(path, "victim") for name, path in victims.items()} == dict.fromkeys(victims, 2)
    assert {name: sha256(path) for name, path in victims.items()} == before
    assert set(statuses(alice, pid, deltafile_id)) <= {"STATUS_NOT_APPLIED", "STATUS_ERROR"}


# --- Python stored in a project -------------------------------------------------------------------

def test_python_stored_in_a_project_never_runs(alice, tmp_path):
    # The attack: Python a project carries for QGIS desktop (macros, project expression
    # functions, form init code), each writing a marker file if it ever runs.
    marker = tmp_path / "ran"

    def code(name: str) -> str:
        return f"open({str(marker / name)!r}, 'w').write('ran')"

    marker.mkdir()
    functions = ("from qgis.core import qgsfunction\n"
                 "@qgsfunction(args='auto', group='Custom')\n"
                 f"def hostile(feature, parent):\n    {code('expression_function')}\n    return 1\n")
    form = f"def form_open(dialog, layer, feature):\n    {code('form_init')}\n"
    macros = "".join(f"def {name}():\n    {code(name)}\n"
                     for name in ("openProject", "saveProject", "closeProject"))
    for source in (functions, form, macros):
        compile(source, "project", "exec")  # it would run, were it ever run
    properties = (f'<Macros><pythonCode type="QString">{macros}</pythonCode></Macros><ExpressionFunctions>'
                  f'<pythonCode type="QString">{functions}</pythonCode></ExpressionFunctions>')
    data = gpkg(tmp_path / "notes.gpkg", "notes", {"note": "first", "computed": ""})
    layer = Layer("notes_layer_id", "./notes.gpkg|layername=notes", "ogr", defaults={"computed": "hostile()"})
    project = qgs([layer], properties).replace(
        "<defaults>", "<editform tolerant=\"1\"></editform><editforminit>form_open</editforminit>"
        f"<editforminitcodesource>2</editforminitcodesource><editforminitcode>{form}</editforminitcode>"
        "<defaults>", 1)
    pid = upload_project(alice, "python", {"notes.gpkg": data.read_bytes(), "project.qgs": project.encode()})
    run_jobs()
    push_deltas(alice, pid, [create_delta(layer.id, {"note": "second"})])  # evaluates `hostile()`

    assert [job["status"] in ("finished", "failed") for job in jobs_of(alice, pid)] == [True] * 2
    assert sorted(path.name for path in marker.iterdir()) == []


# --- finding 10: job messages name no path on the server ------------------------------------------

def server_paths() -> list[str]:
    """What a job's messages must not contain: the worker's temporary folders (and the names it
    gives the job's and the QGIS child's), and the checkout the worker runs from."""
    return sorted({tempfile.gettempdir().rstrip("/") + "/", "/tmp/", str(shared_data.ROOT) + "/",
                   "qfc-job-", "qfc-child-"})


def test_job_messages_name_no_path_on_the_server(alice, tmp_path):
    # The finding: the output log and feedback errors carried the worker's absolute temp paths.
    # A project whose jobs have plenty to complain about: a missing file, files that are not
    # data, and deltas that cannot be applied.
    data = gpkg(tmp_path / "data.gpkg", "points", {"name": "a"})
    layers = [
        Layer("good_points_layer", "./data.gpkg|layername=points", "ogr"),
        Layer("missing_file_layer", "./missing/nowhere.gpkg|layername=x", "ogr"),
        Layer("not_data_layer_id", "./notes.txt", "ogr"),
        Layer("broken_raster_layer", "./notes.txt", "gdal", kind="raster"),
        Layer("missing_csv_layer_id", f"file:./missing.csv?{DELIMITED}", "delimitedtext"),
        Layer("broken_gpkg_layer_id", "./broken.gpkg|layername=x", "ogr"),
    ]
    pid = upload_project(alice, "messy", {"data.gpkg": data.read_bytes(), "notes.txt": b"not data\n",
                                          "broken.gpkg": b"SQLite format 3\x00" + bytes(200),
                                          "project.qgs": qgs(layers).encode()})
    alice.post("jobs/", json={"project_id": pid, "type": "package"})
    run_jobs()
    push_deltas(alice, pid, [
        *(create_delta(layer.id, {"x": 1}) for layer in layers[1:]),
        create_delta("good_points_layer", {"no_such_field": 1}),
        delta("patch", "good_points_layer", "999", old={"attributes": {"name": "a"}},
              new={"attributes": {"name": "b"}}),
    ])

    jobs = jobs_of(alice, pid)
    assert sorted(job["type"] for job in jobs) == ["delta_apply", "package", "process_projectfile"]
    found = {}
    for job in jobs:
        assert job["output"] and job["feedback"], job["type"]
        text = json.dumps({"output": job["output"], "feedback": job["feedback"]})
        for path in server_paths():
            if hits := re.findall(rf".{{0,60}}{re.escape(path)}.{{0,60}}", text):
                found[f"{job['type']}: {path}"] = hits
    assert found == {}


# --- what held and must keep holding --------------------------------------------------------------

def _qgz(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED,
         symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # unix, where the mode below means a symbolic link
            info.external_attr = 0o120777 << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def held_cases(secret: Path, marker: str) -> dict[str, tuple[str, bytes]]:
    """Attacks on the XML and the archive that were refused; name → (file name, content)."""
    project = qgs([Layer("points_layer_id", "./data.gpkg|layername=secret", "ogr")]).encode()
    head = b'<?xml version="1.0" encoding="UTF-8"?>\n'
    body = project.removeprefix(head)
    return {
        "xxe": ("p.qgs", head + f'<!DOCTYPE qgis [<!ENTITY s SYSTEM "file://{secret}">]>\n'.encode()
                + body.replace(b"<projectlayers>", b"<title>&s;</title><projectlayers>")),
        "billion_laughs": ("p.qgs", head + b'<!DOCTYPE qgis [<!ENTITY a "' + marker.encode() * 10 + b'">'
                           + b"".join(f'<!ENTITY {n} "{("&" + p + ";") * 10}">'.encode()
                                      for p, n in zip("abcdefgh", "bcdefghi", strict=True))
                           + b"]>\n"
                           + body.replace(b"<projectlayers>", b"<title>&i;</title><projectlayers>")),
        "parameter_entity": ("p.qgs", head + f'<!DOCTYPE qgis [<!ENTITY % s SYSTEM "file://{secret}"> %s;]>\n'
                             .encode() + body),
        "xinclude": ("p.qgs", body.replace(
            b"<qgis ", b'<qgis xmlns:xi="http://www.w3.org/2001/XInclude" ', 1).replace(
            b"<projectlayers>", f'<title><xi:include href="file://{secret}" parse="text"/></title>'
            "<projectlayers>".encode())),
        "qgz_dot_dot_member": ("p.qgz", _qgz({"../p.qgs": project})),
        "qgz_absolute_member": ("p.qgz", _qgz({"p.qgs": project, f"/{marker}/p.qgd": b"x"})),
        "qgz_symlink_member": ("p.qgz", _qgz({"p.qgs": project}, symlinks={"data.gpkg": str(secret)})),
        "qgz_bzip2": ("p.qgz", _qgz({"p.qgs": project}, zipfile.ZIP_BZIP2)),
        "qgz_stored": ("p.qgz", _qgz({"p.qgs": project}, zipfile.ZIP_STORED)),
        "deep_xml": ("p.qgs", body.replace(b"<projectlayers>", b"<title>" + b"<a>" * 200_000
                                          + b"</a>" * 200_000 + b"</title><projectlayers>")),
    }


HELD = ["xxe", "billion_laughs", "parameter_entity", "xinclude", "qgz_dot_dot_member", "qgz_absolute_member",
        "qgz_symlink_member", "qgz_bzip2", "qgz_stored", "deep_xml"]


@pytest.mark.parametrize("case", HELD)
def test_hostile_xml_and_archives_are_refused_or_fail_clearly(alice, secrets, case):
    marker = canary()
    file_name, content = held_cases(secrets.gpkg, marker)[case]
    pid = alice.create_project("held")["id"]
    reply = upload(alice, pid, file_name, content)
    if reply.status != 201:  # refused at the door: the worker never sees it
        assert (reply.status, reply.code) == (400, "invalid_qgis_project_file")
        return
    run_jobs()
    (job,) = jobs_of(alice, pid)
    text = json.dumps(job)
    assert secrets.text not in text and marker * 10 not in text
    if case == "qgz_stored":  # a stored zip is how some tools write .qgz: processed like any
        assert job["status"] == "finished", job["output"]
        return
    assert job["status"] in ("failed", "finished")
    if job["status"] == "failed":
        reason = failure_reason(job)
        assert reason and "Traceback" not in reason, job["output"]
    else:  # read without the hostile part: nothing of the secret came in
        assert layers_of(job)["points_layer_id"]["is_valid"] is False


def failure_reason(job: dict) -> str:
    """Why a failed job failed, as its page tells: the feedback's error, else its log's end."""
    error = (job.get("feedback") or {}).get("error")
    if error:
        return error
    lines = [line for line in (job.get("output") or "").splitlines() if line and not line.startswith("[job]")]
    return lines[-1] if lines else ""
