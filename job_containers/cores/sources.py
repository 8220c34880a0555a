"""Which layer sources a QGIS job may open, decided before QGIS opens any.

A project file comes from anyone, and its layers name what QGIS reads: a file anywhere on the
worker (`/etc/passwd`, another job's folder), a URL anywhere (the cloud's metadata endpoint, the
AWS stand-in, a private service), a database on any host. So every layer's source is checked
first, by the same rules for process_projectfile, package and apply_deltas (qgis_project.
open_project), and a refused layer is never opened: it is reported invalid with the reason.

- A file must lie inside the project's folder (the owner's shared datasets folder for
  `localized:` sources) once the provider's own decoding, `..` and links are resolved; that holds
  for files inside GDAL archive paths (`/vsizip/...`), virtual layers' embedded layers, virtual
  rasters' inputs, delimited-text and tile URLs too.
- A remote source (http(s) services, `/vsicurl/`, databases) must name a host the job may reach
  (chalicelib/rules/job_hosts.py: public addresses only, unless the operator allows a private
  one). Cloud storage handlers (`/vsis3/` and the like) would read with the worker's credentials:
  never.
- What no rule above covers is refused: unknown providers, connection strings and URL schemes,
  inline XML definitions, full SQL queries that OGR would run over other files, open options
  that run SQL, and layers or groups embedded from other project files.

QGIS's own decoding (`decodedSource`, `decodeUri`) is used wherever it exists, so what is
checked is what QGIS would open.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from qgis.core import (
    QgsDataSourceUri,
    QgsMeshLayer,
    QgsPathResolver,
    QgsProviderRegistry,
    QgsRasterDataProvider,
    QgsRasterLayer,
    QgsReadWriteContext,
    QgsVectorLayer,
    QgsVirtualLayerDefinition,
)
from qgis.PyQt.QtCore import QUrl

from chalicelib.rules import job_hosts
from chalicelib.rules.job_hosts import HostPolicy, Refused, Unreachable
from job_containers.cores.project_file import LayerSource

LOCALIZED_PREFIXES = ("localized:", "file:localized:")
_NO_SOURCE_PROVIDERS = {"", "memory", "mesh_memory"}
_FILE_PROVIDERS = {"ogr", "gdal", "delimitedtext", "spatialite", "gpx", "mdal", "ept", "pdal", "copc"}
_URL_PROVIDERS = {"wms", "wcs", "WFS", "OAPIF", "arcgisfeatureserver", "arcgismapserver", "geonode",
                  "vectortile"}
_DATABASE_PORTS = {"postgres": 5432, "postgresraster": 5432, "mssql": 1433, "hana": 30015, "DB2": 50000}
_MESH_PROVIDERS = {"mdal"}
_RASTER_PROVIDERS = {"gdal", "wms", "wcs", "arcgismapserver", "postgresraster", "virtualraster"}
_WEB_PORTS = {"http": 80, "https": 443}

# GDAL's virtual file systems (https://gdal.org/user/virtual_file_systems.html).
_GDAL_ARCHIVES = {"vsizip", "vsigzip", "vsitar", "vsi7z", "vsirar"}
_GDAL_WEB = {"vsicurl", "vsicurl_streaming"}
_GDAL_CLOUD = {"vsis3", "vsis3_streaming", "vsigs", "vsigs_streaming", "vsiaz", "vsiaz_streaming", "vsiadls",
               "vsioss", "vsioss_streaming", "vsiswift", "vsiswift_streaming", "vsiwebhdfs", "vsihdfs"}
# GDAL connection strings: web services whose rest is a URL, and files' subdatasets.
_GDAL_WEB_PREFIXES = {"WFS", "WMS", "WMTS", "OAPIF", "ESRIJSON", "GEOJSON", "TOPOJSON"}
_GDAL_FILE_PREFIXES = {"GPKG", "NETCDF", "HDF4", "HDF5", "GTIFF_DIR"}
_CONNECTION_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9_]+):(.*)$", re.DOTALL)
# OGR open options (`|option:KEY=VALUE`) that only read the file differently; others, such as
# GeoPackage's PRELUDE_STATEMENTS (SQL run on opening), are refused.
_HARMLESS_OPEN_OPTIONS = {
    "AUTODETECT_TYPE", "AUTODETECT_WIDTH", "AUTODETECT_SIZE_LIMIT", "KEEP_SOURCE_COLUMNS",
    "KEEP_GEOM_COLUMNS", "GEOM_POSSIBLE_NAMES", "X_POSSIBLE_NAMES", "Y_POSSIBLE_NAMES", "Z_POSSIBLE_NAMES",
    "HEADERS", "SEPARATOR", "EMPTY_STRING_AS_NULL", "QUOTED_FIELDS_AS_STRING", "FLATTEN_NESTED_ATTRIBUTES",
    "NESTED_ATTRIBUTE_SEPARATOR", "LIST_ALL_TABLES", "IMMUTABLE", "ENCODING", "DATE_AS_STRING",
    "ARRAY_AS_STRING"}
# Where OGR runs a full SQL query itself, its dialect reads other files (`JOIN 'other.shp'.layer`);
# in these formats the query is SQLite's own, which reads nothing else.
_SQLITE_SUFFIXES = (".gpkg", ".sqlite", ".db", ".spatialite")
_MAX_NESTING = 4  # virtual layers in virtual layers...
# Names resolved by this process, which checks one job's projects (a package job checks the
# project and then the packaged project, which names the same hosts): each name once.
_resolved: dict[str, list] = {}


@dataclass(frozen=True)
class Folders:
    """Where a job's files are: the project's own, and the owner's shared datasets (for
    `localized:` sources), if the job has them."""

    project: Path
    localized: Path | None = None


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    # Connected to by the provider itself (a database), not through the worker's egress proxy,
    # which checks web requests again when they are made.
    direct: bool = False


class SourceChecker:
    """Checks the layers of one project file; `refusals` gives each refused layer's reason."""

    def __init__(self, folders: Folders, policy: HostPolicy):
        self.folders = folders
        self.policy = policy
        self.root = folders.project.resolve()
        self.localized_root = folders.localized.resolve() if folders.localized else None
        self._context = QgsReadWriteContext()
        # QGIS resolves relative sources against the project file's folder; any name does.
        self._context.setPathResolver(QgsPathResolver(str(self.root / "project.qgs")))
        self._layers = {"vector": QgsVectorLayer(), "raster": QgsRasterLayer(), "mesh": QgsMeshLayer()}

    def refusals(self, layers: Iterable[LayerSource]) -> dict[str, Refused]:
        """Layer id → why its source may not be opened, for the refused layers only. Every name
        the layers use is resolved once, all at the same time."""
        refused: dict[str, Refused] = {}
        remote: dict[str, list[Endpoint]] = {}
        for layer in layers:
            try:
                if layer.embedded:
                    raise Refused("Layers embedded from another project file are not supported.")
                remote[layer.id] = list(self.endpoints(layer.provider, layer.datasource))
            except Refused as refusal:
                refused[layer.id] = refusal
        names = {endpoint.host for endpoints in remote.values() for endpoint in endpoints}
        if names - _resolved.keys():
            _resolved.update(job_hosts.resolve_all(names - _resolved.keys()))
        addresses = {name: _resolved[name] for name in names}
        for layer_id, endpoints in remote.items():
            for endpoint in endpoints:
                if not addresses[endpoint.host] and not endpoint.direct:
                    continue  # fails when QGIS asks for it, or the proxy refuses it then
                try:
                    self.policy.addresses(endpoint.host, endpoint.port, addresses[endpoint.host])
                except Refused as refusal:
                    refused[layer_id] = refusal
                    break
        return refused

    def endpoints(self, provider: str, datasource: str, depth: int = 0) -> Iterable[Endpoint]:
        """The network endpoints the source reaches (to be checked against the host policy);
        raises Refused for anything local that is not allowed."""
        if depth > _MAX_NESTING:
            raise Refused("The layer's source nests other sources too deeply.")
        if datasource.startswith(LOCALIZED_PREFIXES):
            return self._localized(datasource)
        if provider in _NO_SOURCE_PROVIDERS:
            return ()
        if provider == "delimitedtext" and urlsplit(datasource).scheme.lower() not in ("file", ""):
            raise Refused("Delimited text layers read files of the project only, not URLs.")
        decoded = self._decoded(provider, datasource)
        if provider in ("ogr", "gdal"):
            return self._gdal_source(provider, decoded)
        if provider == "virtual":
            return self._virtual(decoded, depth)
        if provider == "virtualraster":
            return self._virtual_raster(decoded, depth)
        if provider in _DATABASE_PORTS:
            return self._database(provider, decoded)
        if provider in _URL_PROVIDERS:
            return self._service(provider, decoded)
        if provider in _FILE_PROVIDERS:
            return self._file_provider(provider, decoded)
        raise Refused(f'The data provider "{provider}" is not allowed on this server.')

    # --- Files ------------------------------------------------------------------------------

    def inside(self, path: str, root: Path | None = None) -> None:
        """Raise unless `path` (absolute, or relative to the project) stays in `root`."""
        root = root or self.root
        if not path:
            raise Refused("The layer's source names no file.")
        candidate = Path(path) if os.path.isabs(path) else root / path
        if not Path(os.path.realpath(candidate)).is_relative_to(root):
            raise Refused(f'The layer\'s file "{path}" is outside the project\'s folder; a job reads only '
                          "the project's own files.")

    def _localized(self, datasource: str) -> Iterable[Endpoint]:
        """`localized:<path>`: a file of the owner's shared datasets, relative to their folder."""
        path = datasource.split("localized:", 1)[1].split("|")[0]
        if not path or os.path.isabs(path) or ".." in Path(path).parts:
            raise Refused(f'The localized path "{path}" must name a file of the shared datasets.')
        if self.localized_root is not None:
            self.inside(path, self.localized_root)
        return ()

    def _file_provider(self, provider: str, decoded: str) -> Iterable[Endpoint]:
        parts = _decode_uri(provider, decoded)
        path = parts.get("path") or ""
        if provider == "mdal":
            path = _quoted_or_whole(path)
        if provider in ("ept", "pdal", "copc") and path.startswith(("http://", "https://")):
            return [self._web_endpoint(path)]
        if not path:
            raise Refused("The layer's source names no file.")
        return self._gdal_path(path) if provider == "mdal" else self._checked_file(path)

    def _checked_file(self, path: str) -> Iterable[Endpoint]:
        self.inside(path)
        return ()

    @staticmethod
    def _not_virtual(path: str) -> None:
        """A GDAL VRT names other files and URLs inside the file, where no check looks (GDAL
        does not open one in a job at all: sandbox.child_environment)."""
        if path.lower().endswith(".vrt"):
            raise Refused("GDAL virtual files (.vrt) name other files and are not supported on this server.")

    # --- GDAL -------------------------------------------------------------------------------

    def _gdal_source(self, provider: str, decoded: str) -> Iterable[Endpoint]:
        parts = _decode_uri(provider, decoded)
        path = f"{parts.get('vsiPrefix') or ''}{parts.get('path') or ''}{parts.get('vsiSuffix') or ''}"
        if not path:
            path = decoded.split("|")[0]
        if provider == "ogr":
            _check_ogr_extras(decoded, parts, path)
        return self._gdal_path(path)

    def _gdal_path(self, path: str) -> list[Endpoint]:
        """A path as GDAL reads it: virtual file systems, connection strings, URLs, files."""
        path = path.strip()
        if path.startswith("<"):
            raise Refused("Inline GDAL XML definitions are not supported on this server.")
        if path.startswith("/vsi"):
            return self._gdal_virtual_path(path)
        if path.lower().startswith(("http://", "https://")):
            return [self._web_endpoint(path)]
        match = _CONNECTION_PREFIX.match(path)
        if match:
            return self._gdal_connection(match.group(1), match.group(2))
        self._not_virtual(path)
        self.inside(path)
        return []

    def _gdal_virtual_path(self, path: str) -> list[Endpoint]:
        # `/vsicurl?url=...&options`: the handler's options may hold slashes of their own.
        end = min((i for i in (path.find("/", 1), path.find("?")) if i > 0), default=len(path))
        handler, rest = path[1:end], path[end + 1:]
        name = handler
        if name in _GDAL_CLOUD:
            raise Refused(f'GDAL\'s cloud storage handler "/{name}/" is not allowed: jobs read only the '
                          "project's own files and public web services.")
        if name in _GDAL_WEB:
            if path[end:end + 1] == "?":  # /vsicurl?url=...&other=options
                return [self._web_endpoint((parse_qs(rest).get("url") or [""])[0])]
            return [self._web_endpoint(rest)]
        if name in _GDAL_ARCHIVES:
            if rest.startswith("{"):
                archive, closing, _ = rest[1:].partition("}")
                if not closing:
                    raise Refused(f'The archive path "{_short(path)}" is malformed.')
                return self._gdal_path(archive)
            return self._gdal_path(rest)
        if name == "vsisubfile":  # /vsisubfile/offset_size,path
            return self._gdal_path(rest.partition(",")[2])
        raise Refused(f'GDAL\'s "/{name}/" handler is not allowed on this server.')

    def _gdal_connection(self, prefix: str, rest: str) -> list[Endpoint]:
        upper = prefix.upper()
        if upper == "PG":
            return [self._libpq_endpoint(rest)]
        if upper in _GDAL_WEB_PREFIXES:
            return [self._web_endpoint(rest)]
        if upper in _GDAL_FILE_PREFIXES:
            self.inside(_subdataset_file(rest))
            return []
        if rest.startswith("//"):
            raise Refused(f'The URL scheme of "{_short(prefix + ":" + rest)}" is not allowed on this server.')
        raise Refused(f'The GDAL connection type "{prefix}:" is not allowed on this server.')

    # --- Virtual layers ---------------------------------------------------------------------

    def _virtual(self, decoded: str, depth: int) -> list[Endpoint]:
        definition = QgsVirtualLayerDefinition.fromUrl(QUrl.fromEncoded(decoded.encode()))
        if definition.filePath():
            self.inside(definition.filePath())
        found: list[Endpoint] = []
        for source in definition.sourceLayers():
            if not source.isReferenced():
                found.extend(self.endpoints(source.provider(), source.source(), depth + 1))
        return found

    def _virtual_raster(self, decoded: str, depth: int) -> list[Endpoint]:
        parameters, ok = QgsRasterDataProvider.decodeVirtualRasterProviderUri(unquote(decoded))
        if not ok:
            raise Refused("The virtual raster's definition could not be read.")
        found: list[Endpoint] = []
        for raster in parameters.rInputLayers:
            found.extend(self.endpoints(raster.provider, raster.uri, depth + 1))
        return found

    # --- Network ----------------------------------------------------------------------------

    def _service(self, provider: str, decoded: str) -> list[Endpoint]:
        parts = _decode_uri(provider, decoded)
        if parts.get("path"):  # a tile package (`type=mbtiles&url=...`) read as a file
            return self._checked_file(parts["path"])
        url = parts.get("url") or QgsDataSourceUri(decoded).param("url")
        if not url:
            encoded = QgsDataSourceUri()
            encoded.setEncodedUri(decoded)
            url = encoded.param("url")
        if not url:
            raise Refused("The layer's source names no URL.")
        if url.lower().startswith("file:"):
            # Local tiles (`file:///.../{z}/{x}/{y}.png`): the folder above the first placeholder.
            path = unquote(urlsplit(url).path).split("{")[0]
            self.inside(path.rstrip("/") or "/")
            return []
        if provider == "vectortile" and "://" not in url:
            self.inside(url)
            return []
        return [self._web_endpoint(url)]

    def _web_endpoint(self, url: str) -> Endpoint:
        """http(s) only: every other scheme (`file:`, `ftp:`, `gopher:`...) is refused here."""
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _WEB_PORTS:
            raise Refused(f'The URL "{_short(url)}" is not an http(s) URL; jobs reach only web services.')
        try:
            port = parts.port or _WEB_PORTS[scheme]
        except ValueError:
            raise Refused(f'The URL "{_short(url)}" has an invalid port.') from None
        if not parts.hostname:
            raise Refused(f'The URL "{_short(url)}" names no host.')
        return Endpoint(parts.hostname, port)

    def _database(self, provider: str, decoded: str) -> list[Endpoint]:
        uri = QgsDataSourceUri(decoded)
        if uri.service():
            # Services are looked up in files of the machine the job runs on: never there.
            raise Unreachable(f'Unable to connect to service "{uri.service()}".')
        if not uri.host():
            raise Refused("The database connection names no host (a connection to this server's own"
                          " database socket is not allowed).")
        return [Endpoint(uri.host(), int(uri.port() or _DATABASE_PORTS[provider]), direct=True)]

    def _libpq_endpoint(self, conninfo: str) -> Endpoint:
        """A `PG:` connection string, in libpq's `key=value` form or as a `postgresql://` URL."""
        if conninfo.lstrip().lower().startswith(("postgresql://", "postgres://")):
            parts = urlsplit(conninfo.strip())
            if not parts.hostname:
                raise Refused("The database connection names no host.")
            return Endpoint(parts.hostname, parts.port or 5432, direct=True)
        uri = QgsDataSourceUri(conninfo)
        if uri.service() or "service=" in conninfo:
            raise Refused("Database services are not configured on this server; name the host instead.")
        if "hostaddr" in conninfo:
            raise Refused("Database connections with `hostaddr` are not supported; name the host instead.")
        return self._database("postgres", conninfo)[0]

    # --- QGIS decoding ----------------------------------------------------------------------

    def _decoded(self, provider: str, datasource: str) -> str:
        """The source with relative paths made absolute, as QGIS does when it reads the layer."""
        kind = ("mesh" if provider in _MESH_PROVIDERS
                else "raster" if provider in _RASTER_PROVIDERS else "vector")
        return self._layers[kind].decodedSource(datasource, provider, self._context)


def _decode_uri(provider: str, source: str) -> dict:
    return {key: value for key, value in QgsProviderRegistry.instance().decodeUri(provider, source).items()
            if isinstance(value, str | list)}


def _check_ogr_extras(decoded: str, parts: dict, path: str) -> None:
    """OGR runs a full SQL query (a `subset` starting with SELECT) in its own dialect, which can
    join layers of any other file; and some open options run SQL when the file opens."""
    subset = (parts.get("subset") or "").lstrip()
    if subset[:6].upper() == "SELECT" and not path.lower().endswith(_SQLITE_SUFFIXES):
        raise Refused("Full SQL queries are allowed on GeoPackage and SQLite layers only.")
    for piece in decoded.split("|")[1:]:
        if piece.startswith("option:"):
            key = piece[len("option:"):].split("=")[0].strip().upper()
            if key not in _HARMLESS_OPEN_OPTIONS:
                raise Refused(f'The GDAL open option "{key}" is not allowed on this server.')


def _subdataset_file(rest: str) -> str:
    """The file of a GDAL subdataset name (`GPKG:file.gpkg:table`, `NETCDF:"file.nc":var`)."""
    quoted = re.match(r'^"([^"]*)"', rest)
    if quoted:
        return quoted.group(1)
    return rest.rpartition(":")[0] if rest.count(":") >= 1 else rest


def _quoted_or_whole(path: str) -> str:
    """MDAL names a file as `"file.nc":variable` (or `DRIVER:"file":variable`)."""
    quoted = re.search(r'"([^"]*)"', path)
    return quoted.group(1) if quoted else path


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
