"""The AWS stand-in's state on disk: a snapshot, and a journal of what changed since.

    <data dir>/aws-state/
        snapshot.jsonl      DynamoDB tables (definition, TTL, items) and S3 buckets (versioning,
                            every object version and delete marker, multipart uploads in
                            progress), one JSON line each, written whole and renamed into place
        journal-<n>.jsonl   the requests that changed state since snapshot `n`, in moto's
                            recording format, except that a body of 64 KiB or more is a file
        bodies/<sha256>     object and request bodies, one file per distinct content, shared
        restored.json       what the last start restored, how long it took, the bytes on disk

At start, before the server listens (`restore`): the snapshot goes straight into moto's backends
(objects are not copied: moto reads a restored object's bytes from its body file when asked),
then the journal is replayed in this process (moto's own request handling, without a network),
and if the journal held anything the state is compacted: snapshot `n+1` is written and renamed
into place, journal `n` removed, and bodies nothing refers to any more deleted. A crash at any
step leaves snapshot `n` with journal `n`, or snapshot `n+1` alone: both whole.

While serving, `Journal.record` writes each request that changes state (moto's recorder calls
it). What the journal replays must come out the same: S3 draws its version and upload ids from a
seeded stream (see aws_standin), the stack seeds it first thing after every start, and the seed
request is the journal's first entry; the snapshot keeps ids as they are.

A recording of moto's own format kept by an older version (`moto-recording.jsonl` in the data
dir) is replayed once as a journal and compacted into a snapshot.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

INLINE_BODY_BYTES = 64 * 1024
COPY_CHUNK = 8 * 1024 * 1024
SNAPSHOT = "snapshot.jsonl"
LEGACY_RECORDING = "moto-recording.jsonl"


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class Bodies:
    """Body files: an object's bytes under their SHA-256 (stored once), or a request's under a
    name of its own."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        return self.directory / sha

    def put_bytes(self, data: bytes | memoryview) -> str:
        return self.put_stream(io.BytesIO(data))

    def put_request_body(self, data: bytes) -> str:
        """Store a request's body under a new name (a request is on its way: no time to hash)."""
        name = f"r-{uuid.uuid4().hex}"
        temporary = self.directory / f".incoming-{name}"
        temporary.write_bytes(data)
        os.replace(temporary, self.path(name))
        return name

    def put_stream(self, stream: IO[bytes]) -> str:
        """Store what `stream` holds from its current position; its SHA-256."""
        digest = hashlib.sha256()
        temporary = self.directory / f".incoming-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
        with open(temporary, "wb") as out:
            while chunk := stream.read(COPY_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        sha = digest.hexdigest()
        target = self.path(sha)
        if target.exists():
            temporary.unlink()
        else:
            os.replace(temporary, target)
        return sha

    def collect_garbage(self, keep: set[str]) -> int:
        """Delete the bodies not in `keep` (and unfinished writes); the bytes freed."""
        freed = 0
        for path in self.directory.iterdir():
            if path.name not in keep:
                freed += path.stat().st_size
                path.unlink()
        return freed


class StoredBody:
    """An object's bytes, read from a body file when moto asks for them: stands in for the
    temporary file a moto `FakeKey` keeps its value in, without copying it there. Replaced by a
    real temporary file should moto ever write to it."""

    def __init__(self, path: Path, size: int):
        self.path, self.size, self.position = path, size, 0
        self._written: IO[bytes] | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def seek(self, offset: int, whence: int = 0) -> int:
        if self._written is not None:
            return self._written.seek(offset, whence)
        base = {0: 0, 1: self.position, 2: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self._written.tell() if self._written is not None else self.position

    def read(self, size: int = -1) -> bytes:
        if self._written is not None:
            return self._written.read(size)
        with open(self.path, "rb") as stored:
            stored.seek(self.position)
            data = stored.read() if size is None or size < 0 else stored.read(size)
        self.position += len(data)
        return data

    def _writable(self) -> IO[bytes]:
        if self._written is None:
            import tempfile

            self._written = tempfile.SpooledTemporaryFile(max_size=INLINE_BODY_BYTES)  # noqa: SIM115
        return self._written

    def truncate(self, size: int | None = None) -> int:
        return self._writable().truncate(size)

    def write(self, data: bytes) -> int:
        return self._writable().write(data)

    def close(self) -> None:
        if self._written is not None:
            self._written.close()


_JOURNALED = threading.local()  # the body file of the request this thread is handling


def offer_body(path: Path | None, body: bytes | None) -> None:
    """The request this thread handles has its body in the file at `path`: an object (or part)
    stored with exactly these bytes reads them from there instead of a copy of its own."""
    _JOURNALED.offer = (path, body) if path is not None else None


def objects_read_body_files() -> None:
    """Make moto's objects keep their bytes in body files where one holds them already.

    - An object or part stored from a request whose body was journaled reads it from that file
      (moto would copy it into a temporary file: a second copy on disk and a write per upload).
    - moto deep-copies every object version to list them (`ListObjectVersions`), and a copy reads
      the object's bytes into a new temporary file; a version whose bytes are a body file is
      copied by reference to that file instead (the file never changes)."""
    from moto.s3.models import FakeKey

    if getattr(FakeKey.__getstate__, "__qfc_stored__", False):
        return
    get_state, set_state = FakeKey.__getstate__, FakeKey.__setstate__
    set_value = FakeKey.value.fset

    def store_value(self, new_value) -> None:
        offer = getattr(_JOURNALED, "offer", None)
        if offer is not None and isinstance(new_value, bytes | bytearray) and len(new_value) == len(
                offer[1]) and new_value == offer[1]:
            _JOURNALED.offer = None
            self._value_buffer.close()
            self._value_buffer = StoredBody(offer[0], len(new_value))
            self.contentsize = len(new_value)
            return
        set_value(self, new_value)

    FakeKey.value = FakeKey.value.setter(store_value)

    def getstate(self) -> dict[str, Any]:
        buffer = self.__dict__.get("_value_buffer")
        if isinstance(buffer, StoredBody) and buffer._written is None:
            state = {name: value for name, value in self.__dict__.items()
                     if name not in ("_value_buffer", "lock")}
            return {**state, "stored_body": (str(buffer.path), buffer.size)}
        return get_state(self)

    def setstate(self, state: dict[str, Any]) -> None:
        if "stored_body" not in state:
            set_state(self, state)
            return
        path, size = state["stored_body"]
        self.__dict__.update({name: value for name, value in state.items() if name != "stored_body"})
        self._value_buffer = StoredBody(Path(path), size)
        self.lock = threading.Lock()

    getstate.__qfc_stored__ = True
    FakeKey.__getstate__, FakeKey.__setstate__ = getstate, setstate


def _live_bodies() -> set[str]:
    """The body files moto's objects read now, including those it keeps out of sight (the parts
    of a completed multipart upload, the version a delete marker hides)."""
    found: set[str] = set()

    def note(key) -> None:
        buffer = getattr(key, "_value_buffer", None)
        if isinstance(buffer, StoredBody):
            found.add(buffer.name)
        multipart = getattr(key, "multipart", None)
        for part in (multipart.parts.values() if multipart is not None else ()):
            note(part)
        hidden = getattr(key, "key", None)
        if hidden is not None and hidden is not key:
            note(hidden)

    for _account_id, backend in _s3_backends():
        for bucket in list(backend.buckets.values()):
            for _name, versions in list(bucket.keys.iterlists()):
                for key in versions:
                    note(key)
            for multipart in list(bucket.multiparts.values()):
                for part in multipart.parts.values():
                    note(part)
    return found


# --- Writing a snapshot ---------------------------------------------------------------------


def _dynamodb_backends() -> Iterator[tuple[str, str, Any]]:
    from moto.dynamodb.models import dynamodb_backends

    for account_id in list(dynamodb_backends.keys()):
        for region, backend in list(dynamodb_backends[account_id].items()):
            yield account_id, region, backend


def _s3_backends() -> Iterator[tuple[str, Any]]:
    from moto.s3.models import s3_backends

    for account_id in list(s3_backends.keys()):
        for _partition, backend in list(s3_backends[account_id].items()):
            yield account_id, backend


def _items_of(table) -> Iterator[Any]:
    for stored in table.items.values():
        if table.range_key_attr:
            yield from stored.values()
        else:
            yield stored


def _definition(table) -> dict[str, Any]:
    """What CreateTable needs to make the table again."""
    described = table.describe(base_key="TableDescription")["TableDescription"]
    definition = {key: described[key] for key in ("TableName", "KeySchema", "AttributeDefinitions",
                                                  "StreamSpecification") if key in described}
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if described.get(kind):
            definition[kind] = [{key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
                                for index in described[kind]]
    definition["BillingMode"] = described.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    throughput = described.get("ProvisionedThroughput") or {}
    definition["ProvisionedThroughput"] = {key: throughput[key] for key in ("ReadCapacityUnits",
                                                                           "WriteCapacityUnits")
                                           if key in throughput}
    return definition


def _table_lines(account_id: str, region: str, table) -> Iterator[dict]:
    ttl = {key: value for key, value in (table.ttl or {}).items() if isinstance(value, str | bool | None)}
    yield {"table": table.name, "account": account_id, "region": region, "definition": _definition(table),
           "ttl": ttl}
    for item in _items_of(table):
        yield {"item": {name: _wire(value) for name, value in item.attrs.items()}}


def _wire(value) -> dict[str, Any]:
    """A moto attribute value as DynamoDB's JSON has it (binary values base64-encoded)."""
    kind, inner = value.type, value.value
    if kind == "L":
        return {"L": [_wire(element) for element in inner]}
    if kind == "M":
        return {"M": {name: _wire(element) for name, element in inner.items()}}
    if kind == "B":
        return {"B": base64.b64encode(inner).decode("ascii") if isinstance(inner, bytes) else inner}
    if kind == "BS":
        return {"BS": [base64.b64encode(element).decode("ascii") if isinstance(element, bytes) else element
                       for element in inner]}
    return {kind: inner}


def _body_of(key, bodies: Bodies) -> dict[str, str]:
    """Where the snapshot finds a key's bytes: `data` (base64, when small) or a `body` file."""
    buffer = key._value_buffer
    if isinstance(buffer, StoredBody) and buffer._written is None:
        return {"body": buffer.name}
    with key.lock:
        if key.size < INLINE_BODY_BYTES:
            buffer.seek(0)
            return {"data": base64.b64encode(buffer.read()).decode("ascii")}
        buffer.seek(0)
        return {"body": bodies.put_stream(buffer)}


def _key_line(key, bodies: Bodies) -> dict:
    from moto.s3.models import FakeDeleteMarker

    line: dict[str, Any] = {"key": key.name, "version_id": key.version_id,
                            "last_modified": key.last_modified.isoformat()}
    if isinstance(key, FakeDeleteMarker):
        return {**line, "delete_marker": True}
    return {**line, **_body_of(key, bodies), "size": key.size, "etag": key.etag.strip('"'),
            "metadata": dict(key._metadata), "storage": key._storage_class,
            "checksum_value": key.checksum_value, "checksum_algorithm": key.checksum_algorithm}


def _bucket_lines(account_id: str, bucket, bodies: Bodies) -> Iterator[dict]:
    yield {"bucket": bucket.name, "account": account_id, "region": bucket.region_name,
           "versioning": bucket.versioning_status}
    for _name, versions in list(bucket.keys.iterlists()):
        for key in versions:
            yield _key_line(key, bodies)
    for upload_id, multipart in list(bucket.multiparts.items()):
        parts = [{"number": number, **_body_of(part, bodies), "size": part.size,
                  "etag": part.etag.strip('"')} for number, part in sorted(multipart.parts.items())]
        yield {"multipart": upload_id, "key": multipart.key_name, "metadata": dict(multipart.metadata),
               "storage": multipart.storage, "parts": parts}


def snapshot_lines(bodies: Bodies) -> Iterator[dict]:
    for account_id, region, backend in _dynamodb_backends():
        for table in list(backend.tables.values()):
            yield from _table_lines(account_id, region, table)
    for account_id, backend in _s3_backends():
        for bucket in list(backend.buckets.values()):
            yield from _bucket_lines(account_id, bucket, bodies)


# --- Loading a snapshot ---------------------------------------------------------------------


@dataclass
class Restored:
    tables: int = 0
    items: int = 0
    buckets: int = 0
    versions: int = 0
    object_bytes: int = 0
    journal_entries: int = 0
    seconds: float = 0.0
    compacted: bool = False
    disk_bytes: int = 0


def _create_table(line: dict):
    from moto.dynamodb.models import dynamodb_backends

    definition = line["definition"]
    backend = dynamodb_backends[line["account"]][line["region"]]
    table = backend.create_table(
        definition["TableName"], schema=definition["KeySchema"],
        throughput=definition.get("ProvisionedThroughput") or None,
        attr=definition["AttributeDefinitions"],
        global_indexes=definition.get("GlobalSecondaryIndexes"),
        indexes=definition.get("LocalSecondaryIndexes"), streams=definition.get("StreamSpecification"),
        billing_mode=definition["BillingMode"], sse_specification=None, tags=[],
        deletion_protection_enabled=False, warm_throughput=None,
    )
    if line.get("ttl"):
        table.ttl = {**table.ttl, **line["ttl"]}
    return table


def _stored_key(line: dict, bucket, account_id: str, bodies: Bodies):
    from moto.s3.models import FakeKey

    key = FakeKey(name=line["key"], value=b"", account_id=account_id, region_name=bucket.region_name,
                  storage=line.get("storage"), etag=line["etag"], is_versioned=bucket.is_versioned,
                  version_id=line["version_id"], bucket_name=bucket.name,
                  checksum_value=line.get("checksum_value"))
    if "body" in line:
        key._value_buffer.close()
        key._value_buffer = StoredBody(bodies.path(line["body"]), int(line["size"]))
        key.contentsize = int(line["size"])
    else:
        key.value = base64.b64decode(line["data"])
    key.checksum_algorithm = line.get("checksum_algorithm")
    key._metadata.clear()
    key._metadata.update(line.get("metadata") or {})
    key.last_modified = datetime.fromisoformat(line["last_modified"])
    return key


def _delete_marker(line: dict, bucket):
    from moto.s3.models import FakeDeleteMarker

    latest = bucket.keys.getlist(line["key"], [])
    marker = FakeDeleteMarker.__new__(FakeDeleteMarker)
    marker.key = latest[-1] if latest else None
    marker.name = line["key"]
    marker.last_modified = datetime.fromisoformat(line["last_modified"])
    marker._version_id = line["version_id"]
    return marker


def _multipart(line: dict, bucket, account_id: str, bodies: Bodies):
    from moto.s3.models import FakeMultipart
    from moto.utilities.utils import CaseInsensitiveDict

    multipart = FakeMultipart(line["key"], CaseInsensitiveDict(line.get("metadata") or {}), account_id,
                              bucket.region_name, storage=line.get("storage"))
    multipart.id = line["multipart"]
    for part in line["parts"]:
        stored = _stored_key({**part, "key": str(part["number"]), "version_id": None, "metadata": {},
                              "last_modified": datetime.now().astimezone().isoformat()},
                             bucket, account_id, bodies)
        multipart.parts[int(part["number"])] = stored
        multipart.partlist.append(int(part["number"]))
    bucket.multiparts[multipart.id] = multipart


def _load_lines(lines, bodies: Bodies, restored: Restored) -> set[str]:
    from moto.s3.models import s3_backends

    referenced: set[str] = set()
    table = bucket = account_id = None
    for text in lines:
        line = json.loads(text)
        if "table" in line:
            table = _create_table(line)
            restored.tables += 1
        elif "item" in line:
            table.put_item(line["item"])
            restored.items += 1
        elif "bucket" in line:
            account_id = line["account"]
            backend = s3_backends[account_id]["aws"]
            bucket = backend.create_bucket(line["bucket"], line["region"])
            if line.get("versioning"):
                backend.put_bucket_versioning(line["bucket"], line["versioning"])
            restored.buckets += 1
        elif "multipart" in line:
            _multipart(line, bucket, account_id, bodies)
            referenced.update(_bodies_in(line))
        elif line.get("delete_marker"):
            versions = bucket.keys.getlist(line["key"], [])
            bucket.keys.setlist(line["key"], [*versions, _delete_marker(line, bucket)])
        else:
            versions = bucket.keys.getlist(line["key"], [])
            bucket.keys.setlist(line["key"], [*versions, _stored_key(line, bucket, account_id, bodies)])
            referenced.update(_bodies_in(line))
            restored.versions += 1
            restored.object_bytes += int(line["size"])
    return referenced


def load_snapshot(path: Path, bodies: Bodies, restored: Restored) -> set[str]:
    """Put the snapshot's tables and buckets into moto's backends (its first line is its header);
    the bodies it refers to."""
    with open(path, encoding="utf-8") as lines:
        lines.readline()
        return _load_lines(lines, bodies, restored)


# --- The journal ----------------------------------------------------------------------------


class Journal:
    """The state-changing requests since the snapshot, appended one JSON line each."""

    def __init__(self, path: Path, bodies: Bodies):
        self.path, self.bodies = path, bodies
        self._lock = threading.Lock()
        self.replaying = False

    def entry(self, request, body: bytes | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"headers": dict(request.headers), "method": request.method,
                                 "url": request.raw_url}
        if body is not None and len(body) >= INLINE_BODY_BYTES:
            entry["body_file"] = self.bodies.put_request_body(body)
            offer_body(self.bodies.path(entry["body_file"]), body)
        elif body:
            entry.update(body=base64.b64encode(body).decode("ascii"), body_encoded=True)
        else:
            entry.update(body="", body_encoded=False)
        return entry

    def append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as journal:
            journal.write(line)


def request_body(request) -> bytes | None:
    """The body of a request moto is about to handle, read as moto's recorder reads it (and put
    back for moto)."""
    try:
        size = int(request.headers["Content-Length"])
    except (KeyError, ValueError):
        return None
    body = request.environ["wsgi.input"].read(size)
    if isinstance(body, str):
        body = body.encode("utf-8")
    request.environ["wsgi.input"] = io.BytesIO(body)
    return body


def _entries(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as lines:
        for text in lines:
            if text.strip():
                yield json.loads(text)


def replay(path: Path, bodies: Bodies) -> int:
    """Send every request of the journal at `path` to moto, in this process; how many."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    application = DomainDispatcherApplication(create_backend_app)
    count = 0
    for entry in _entries(path):
        offer_body(None, None)
        if "body_file" in entry:
            body = bodies.path(entry["body_file"]).read_bytes()
            offer_body(bodies.path(entry["body_file"]), body)
        elif entry.get("body_encoded"):
            body = base64.b64decode(entry.get("body") or "")
        else:
            body = (entry.get("body") or "").encode("utf-8")
        headers = {name: value for name, value in (entry.get("headers") or {}).items()
                   if name.lower() not in ("content-length", "transfer-encoding")}
        url = urlsplit(entry["url"])
        builder = EnvironBuilder(path=url.path, base_url=f"{url.scheme}://{url.netloc}",
                                 query_string=url.query, method=entry["method"], headers=headers,
                                 data=body)
        try:
            output, _status, _headers = run_wsgi_app(application, builder.get_environ())
            for _ in output:
                pass
            with contextlib.suppress(AttributeError):
                output.close()
        finally:
            builder.close()
            offer_body(None, None)
        count += 1
    return count


# --- The state directory ----------------------------------------------------------------------


def _count_state(restored: Restored) -> None:
    """What moto holds now, whether it came from the snapshot or the journal."""
    from moto.s3.models import FakeDeleteMarker

    restored.tables = restored.items = restored.buckets = restored.versions = restored.object_bytes = 0
    for _account_id, _region, backend in _dynamodb_backends():
        for table in backend.tables.values():
            restored.tables += 1
            restored.items += sum(1 for _ in _items_of(table))
    for _account_id, backend in _s3_backends():
        for bucket in backend.buckets.values():
            restored.buckets += 1
            for _name, versions in bucket.keys.iterlists():
                for key in versions:
                    if not isinstance(key, FakeDeleteMarker):
                        restored.versions += 1
                        restored.object_bytes += key.size


def _disk_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


class StateDirectory:
    def __init__(self, root: Path, legacy_recording: Path | None = None):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.bodies = Bodies(root / "bodies")
        self.legacy_recording = legacy_recording
        self.generation = self._generation()
        self.journal = Journal(self.journal_path(self.generation), self.bodies)

    @property
    def snapshot(self) -> Path:
        return self.root / SNAPSHOT

    def journal_path(self, generation: int) -> Path:
        return self.root / f"journal-{generation}.jsonl"

    def _generation(self) -> int:
        if not self.snapshot.exists():
            return 0
        with open(self.snapshot, encoding="utf-8") as lines:
            return int(json.loads(lines.readline())["generation"])

    def restore(self) -> Restored:
        """Load the snapshot and replay the journal (and a legacy recording); compact when they
        held changes. Run before the server takes requests."""
        started = time.perf_counter()
        restored = Restored()
        referenced: set[str] = set()
        if self.snapshot.exists():
            referenced = load_snapshot(self.snapshot, self.bodies, restored)
        replayed = [path for path in (self.legacy_recording, self.journal.path)
                    if path is not None and path.exists() and path.stat().st_size > 0]
        self.journal.replaying = True
        try:
            for path in replayed:
                restored.journal_entries += replay(path, self.bodies)
        finally:
            self.journal.replaying = False
        if replayed:
            self.compact()
            restored.compacted = True
        else:
            self.bodies.collect_garbage(referenced | _live_bodies())
        _count_state(restored)
        restored.seconds = time.perf_counter() - started
        restored.disk_bytes = _disk_bytes(self.root)
        (self.root / "restored.json").write_text(json.dumps(asdict(restored)) + "\n")
        return restored

    def compact(self) -> None:
        """Write the state as snapshot `n+1`, then drop journal `n` and unreferenced bodies."""
        generation = self.generation + 1
        temporary = self.root / (SNAPSHOT + ".incoming")
        referenced: set[str] = set()
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(json.dumps({"generation": generation}) + "\n")
            for line in snapshot_lines(self.bodies):
                referenced.update(_bodies_in(line))
                out.write(json.dumps(line) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.snapshot)
        _fsync_directory(self.root)
        old = self.journal.path
        self.generation = generation
        self.journal.path = self.journal_path(generation)
        old.unlink(missing_ok=True)
        if self.legacy_recording is not None:
            self.legacy_recording.unlink(missing_ok=True)
        for stale in self.root.glob("journal-*.jsonl"):
            if stale != self.journal.path:
                stale.unlink()
        self.bodies.collect_garbage(referenced | _live_bodies())


def _bodies_in(line: dict) -> list[str]:
    if "multipart" in line:
        return [part["body"] for part in line["parts"] if "body" in part]
    return [line["body"]] if "key" in line and "body" in line else []
