"""Building blocks for hostile QGIS projects, written as an attacker writes them: a `.qgs` is XML
text, each layer a `<maplayer>` naming whatever source the attacker likes. Also a loopback
listener that records every connection a job makes to it, and what a refused layer looks like
in a job's report."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from osgeo import ogr

ogr.UseExceptions()

CRS_4326 = "<spatialrefsys><authid>EPSG:4326</authid></spatialrefsys>"
REFUSED = "refused_datasource"


def canary() -> str:
    """A string that exists nowhere but where the test puts it."""
    return f"qfcleak{uuid.uuid4().hex[:12]}"


def assert_refused(layer: dict) -> None:
    """A layer as a job reports it (`layers_by_id`): refused, never opened, with a reason in words."""
    assert layer["is_valid"] is False, f"{layer['id']} was opened: {layer.get('fields')}"
    assert layer["error_code"] == REFUSED, (layer["error_code"], layer["error_summary"])
    assert re.search(r"[A-Za-z]{2,} [A-Za-z]{2,}", layer["error_summary"] or ""), layer["error_summary"]


@dataclass(frozen=True)
class Layer:
    id: str
    datasource: str
    provider: str
    kind: str = "vector"  # or "raster", "vector-tile"
    cloud_action: str | None = None  # QFieldSync's per-layer action (offline, copy, no_action...)
    defaults: dict[str, str] = field(default_factory=dict)  # field name → default value expression

    def __post_init__(self):
        assert len(self.id) > 10, "QGIS replaces a layer id of 10 characters or fewer with a new one"

    def xml(self) -> str:
        properties = ""
        if self.cloud_action:
            properties = ('<customproperties><Option type="Map"><Option name="QFieldSync/cloud_action"'
                          f' type="QString" value="{self.cloud_action}"/></Option></customproperties>')
        defaults = "".join(f"<default field={quoteattr(name)} expression={quoteattr(expression)}"
                           ' applyOnUpdate="0"/>' for name, expression in self.defaults.items())
        geometry = ' geometry="Point" wkbType="Point"' if self.kind == "vector" else ""
        return (f'<maplayer type="{self.kind}"{geometry}><id>{escape(self.id)}</id>'
                f"<datasource>{escape(self.datasource)}</datasource><layername>{escape(self.id)}</layername>"
                f'<srs>{CRS_4326}</srs><provider encoding="UTF-8">{escape(self.provider)}</provider>'
                f"{properties}<defaults>{defaults}</defaults></maplayer>")


def qgs(layers: list[Layer], properties: str = "") -> str:
    """A QGIS 3.22 project holding `layers` (relative paths resolved from the project's folder);
    `properties` are project entries (`<Scope><key type="QString">value</key></Scope>`)."""
    tree = "".join(f"<layer-tree-layer id={quoteattr(layer.id)} name={quoteattr(layer.id)}"
                   f' checked="Qt::Checked" expanded="1" providerKey={quoteattr(layer.provider)}/>'
                   for layer in layers)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<qgis projectname="hostile" version="3.22.16-Białowieża">'
            f"<projectCrs>{CRS_4326}</projectCrs><layer-tree-group>{tree}</layer-tree-group>"
            f'<projectlayers>{"".join(layer.xml() for layer in layers)}</projectlayers>'
            f'<properties><Paths><Absolute type="bool">false</Absolute></Paths>{properties}</properties>'
            "</qgis>\n")


def gpkg(path: Path, table: str, fields: dict[str, str] | None = None, rows: int = 1) -> Path:
    """A GeoPackage of point features, made with OGR (not QGIS): `fields` name → value."""
    fields = fields or {}
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = dataset.CreateLayer(table, geom_type=ogr.wkbPoint, options=["FID=fid"])
    for field_name in fields:
        layer.CreateField(ogr.FieldDefn(field_name, ogr.OFTString))
    for index in range(rows):
        feature = ogr.Feature(layer.GetLayerDefn())
        for field_name, value in fields.items():
            feature.SetField(field_name, value)
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT({index} {index})"))
        layer.CreateFeature(feature)
    dataset = None  # closes the file
    return path


class Listener:
    """A TCP server on loopback that records each connection (and the first bytes it was sent)
    and answers an HTTP request with `body` (or a redirect to `redirect_to`), or, with
    `answer=False`, accepts and never answers. Any exception in its threads is kept in `errors`,
    and `close` fails on them."""

    def __init__(self, body: bytes = b"", answer: bool = True, host: str = "127.0.0.1",
                 redirect_to: str | None = None):
        self.body, self.answer, self.redirect_to = body, answer, redirect_to
        self.connections: list[bytes] = []
        self.errors: list[BaseException] = []
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._server = socket.create_server((host, 0), family=family)
        self._server.settimeout(0.1)
        self.port = self._server.getsockname()[1]
        self._threads = [threading.Thread(target=self._guard, args=(self._accept,), daemon=True)]
        self._threads[0].start()

    def _guard(self, action, *args) -> None:
        try:
            action(*args)
        except BaseException as error:  # noqa: BLE001 (kept for the test to fail on)
            self.errors.append(error)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            with self._lock:
                self._open.append(connection)
                thread = threading.Thread(target=self._guard, args=(self._serve, connection), daemon=True)
                self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(0.2)
        received = b""
        while not self._stop.is_set() and b"\r\n\r\n" not in received and len(received) < 65536:
            try:
                chunk = connection.recv(4096)
            except TimeoutError:
                if received and not received[:1].isalpha():
                    break  # not HTTP (a database's startup message): recorded, nothing to answer
                continue
            except OSError:
                break
            if not chunk:
                break
            received += chunk
        with self._lock:
            self.connections.append(received)
        self.connected.set()
        if not self.answer:
            self._stop.wait()
            return
        if received[:1].isalpha():
            if self.redirect_to:
                head = f"HTTP/1.1 302 Found\r\nLocation: {self.redirect_to}\r\nContent-Length: 0\r\n"
            else:
                head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(self.body)}\r\n"
            body = b"" if self.redirect_to else self.body
            with contextlib.suppress(OSError):  # the client went away: what it was sent does not matter
                connection.sendall(f"{head}Connection: close\r\n\r\n".encode() + body)
        connection.close()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.close()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=10)
        self._server.close()
        assert not self.errors, self.errors
