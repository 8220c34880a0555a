"""Reading what a request carries (JSON, form-urlencoded and multipart bodies, query parameters)
into the typed inputs of `chalicelib.services.inputs`. Used by handlers only: services never see
a request.

The SDK sends form bodies, QField sends JSON; both become the same input model. A body that
cannot be read is a 400 `api_error`; a readable body whose fields are wrong is a pydantic
validation error, which the error mapping turns into 400 `validation_error`.
"""

from __future__ import annotations

import binascii
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Generic, TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from chalicelib.errors import BadRequest, EmptyContent, InvalidDeltafile, MultipleContents, PayloadTooLarge
from chalicelib.services.inputs import Deltafile

MULTIPART = "multipart/form-data"
MAX_BOUNDARY_CHARS = 70  # RFC 2046
# The clients send two parts (QField's `text` and `file`); a body of thousands is refused.
MAX_PARTS = 100
# JSON and form bodies of this API are a few hundred bytes; files travel as multipart.
MAX_FORM_BODY_BYTES = 1024 * 1024

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def media_type(request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _raw_body(request) -> bytes:
    body = request.raw_body
    if isinstance(body, str):
        body = body.encode("utf-8")
    return body or b""


def _body_bytes(request) -> bytes:
    """The body as one buffer, decoded from the event as it arrived: base64 for binary types (as
    API Gateway sends them, at most 6 MB of event: chalicelib/http/limits.py), else as text."""
    event = request.to_original_event()
    body = event.get("body")
    if not body:
        return b""
    if not event.get("isBase64Encoded"):
        return body.encode("utf-8") if isinstance(body, str) else body
    try:
        return binascii.a2b_base64(body, strict_mode=True)
    except (binascii.Error, ValueError):
        raise BadRequest("The body is not valid base64.") from None


class Deferred(Generic[T]):
    """What reading (part of) a request gave, kept for later: the value, or the error that
    reading raised, raised again by `get`. A handler may read the body before checking the
    caller and still answer the caller's error first."""

    def __init__(self, read: Callable[[], T]) -> None:
        self._value: T | None = None
        self._error: Exception | None = None
        try:
            self._value = read()
        except Exception as error:  # re-raised, unchanged, by `get`
            self._error = error

    def get(self) -> T:
        if self._error is not None:
            raise self._error
        return self._value


class BufferStream(io.RawIOBase):
    """A read-only, seekable stream over bytes already in memory, without copying them (what
    `io.BytesIO` would do with a view): a part of a large body is read where it was received."""

    def __init__(self, data: bytes | memoryview) -> None:
        super().__init__()
        self._view = memoryview(data)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = max(0, min(len(buffer), len(self._view) - self._position))
        buffer[:count] = self._view[self._position:self._position + count]
        self._position += count
        return count

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else self._position + size
        data = bytes(self._view[self._position:end])
        self._position += len(data)
        return data

    def readall(self) -> bytes:
        return self.read()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def getbuffer(self) -> memoryview:
        """The bytes themselves, as `io.BytesIO.getbuffer` gives them (checksums read them so)."""
        return self._view


@dataclass
class Part:
    """One part of a multipart body, read in place from the body. The part's own filename and
    content type are not kept: clients put device paths and arbitrary types there, and the
    target name always comes from the URL."""

    name: str
    stream: IO[bytes]
    size: int


class MultipartBody:
    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.parts: list[Part] = []

    def single(self, name: str) -> Part:
        """The one part named `name`: 400 `empty_content` without it, `multiple_contents` with
        more than one."""
        parts = [part for part in self.parts if part.name == name]
        if not parts:
            raise EmptyContent(f"Send the content in a multipart part named `{name}`.")
        if len(parts) > 1:
            raise MultipleContents(f"Send exactly one multipart part named `{name}`.")
        return parts[0]


def _decoded(content: bytes | memoryview, transfer_encoding: bytes | None) -> bytes | memoryview:
    """A part's bytes without the Content-Transfer-Encoding RFC 7578 deprecates but some
    senders still use; an unknown one is taken as binary, as python-multipart's form parser does."""
    encoding = (transfer_encoding or b"").strip().lower()
    try:
        if encoding == b"base64":
            return binascii.a2b_base64(content)
        if encoding == b"quoted-printable":
            return binascii.a2b_qp(content)
    except (binascii.Error, ValueError):
        raise BadRequest("A multipart part is not valid in its Content-Transfer-Encoding.") from None
    return content


def _boundary(content_type: str) -> bytes:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("A multipart body needs a boundary in its Content-Type header.")
    if len(boundary) > MAX_BOUNDARY_CHARS:
        raise BadRequest(f"A multipart boundary has at most {MAX_BOUNDARY_CHARS} characters.")
    return boundary


STREAM_READ_BYTES = 1024 * 1024


class _PartsReader:
    """One multipart body through python-multipart's streaming parser, with the rules both ways
    of reading share: at most MAX_PARTS parts, each named in its Content-Disposition; each part's
    bytes kept, decoded from a Content-Transfer-Encoding, and kept as a text field too when the
    part has no filename. Only the part named `streamed`, if any, is not kept: its bytes go to
    `sink` as they come (then the other parts are kept within MAX_FORM_BODY_BYTES in all; a body
    read whole is within API Gateway's limits already)."""

    def __init__(self, content_type: str, streamed: str | None = None,
                 sink: Callable[[memoryview], None] | None = None) -> None:
        self.body = MultipartBody()
        self.streamed_parts = 0
        self._streamed = streamed
        self._sink = sink
        self._whole: bytes | None = None  # the body, when it is given at once
        self._headers: dict[bytes, bytes] = {}
        self._header_name: list[bytes] = []
        self._header_value: list[bytes] = []
        self._name = ""
        self._has_filename = False
        self._streaming = False
        # The part's bytes: views of the whole body, or copies of what the parser was given in
        # pieces or held back between writes.
        self._pieces: list[bytes | memoryview] = []
        self._kept_bytes = 0
        self._boundary = _boundary(content_type)

    def read_whole(self, data: bytes) -> MultipartBody:
        """The body given at once: each kept part is a view of `data` (a large upload is in
        memory once)."""
        self._whole = data
        return self._read((data,))

    def read_stream(self, read: Callable[[int], bytes]) -> MultipartBody:
        """The body read as it arrives: `read(n)` gives at most n bytes, b"" at its end."""

        def chunks() -> Iterator[bytes]:
            while chunk := read(STREAM_READ_BYTES):
                yield chunk

        return self._read(chunks())

    def _read(self, chunks: Iterable[bytes]) -> MultipartBody:
        # The parser holds this reader through its callbacks, never the reverse: no reference
        # cycle keeps a body in memory after its request until the garbage collector runs.
        parser = MultipartParser(self._boundary, callbacks={
            "on_part_begin": self._part_begin,
            "on_header_field": lambda buffer, start, end: self._header_name.append(buffer[start:end]),
            "on_header_value": lambda buffer, start, end: self._header_value.append(buffer[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        })
        try:
            for chunk in chunks:
                parser.write(chunk)
            parser.finalize()
        except (FormParserError, KeyError, ValueError):
            raise BadRequest("The multipart body is malformed.") from None
        if parser.state != MultipartState.END:
            raise BadRequest("The multipart body ends before its closing boundary.")
        return self.body

    def _part_begin(self) -> None:
        if len(self.body.parts) >= MAX_PARTS:
            raise BadRequest(f"A multipart body has at most {MAX_PARTS} parts.")
        self._headers.clear()
        self._pieces.clear()

    def _header_end(self) -> None:
        self._headers[b"".join(self._header_name).lower()] = b"".join(self._header_value).strip(b" \t")
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, disposition = parse_options_header(self._headers.get(b"content-disposition"))
        if disposition.get(b"name") is None:
            raise BadRequest("Each multipart part needs a name in its Content-Disposition header.")
        self._name = disposition[b"name"].decode("utf-8", "replace")
        self._has_filename = b"filename" in disposition
        self._streaming = self._name == self._streamed
        if self._streaming:
            self.streamed_parts += 1
            if self.streamed_parts > 1:
                raise MultipleContents(f"Send exactly one multipart part named `{self._streamed}`.")
            # Its bytes are passed on as they come, so they cannot be decoded first.
            if (self._headers.get(b"content-transfer-encoding") or b"binary").strip().lower() not in (
                    b"binary", b"8bit", b"7bit"):
                raise BadRequest("A large file is sent as binary, without a Content-Transfer-Encoding.")

    def _part_data(self, buffer: bytes, start: int, end: int) -> None:
        if self._streaming:
            self._sink(memoryview(buffer)[start:end])
            return
        if self._streamed is not None:
            self._kept_bytes += end - start
            if self._kept_bytes > MAX_FORM_BODY_BYTES:
                raise PayloadTooLarge(
                    f"The parts besides `{self._streamed}` are at most {MAX_FORM_BODY_BYTES} bytes.")
        self._pieces.append(memoryview(buffer)[start:end] if buffer is self._whole else buffer[start:end])

    def _part_end(self) -> None:
        if self._streaming:
            self.body.parts.append(Part(self._name, io.BytesIO(), 0))
            return
        content = self._pieces[0] if len(self._pieces) == 1 else b"".join(self._pieces)
        content = _decoded(content, self._headers.get(b"content-transfer-encoding"))
        if not self._has_filename:
            self.body.fields[self._name] = bytes(content).decode("utf-8", "replace")
        self.body.parts.append(Part(self._name, BufferStream(content), len(content)))


def multipart(request) -> MultipartBody:
    """The parts of a multipart body, each a view of the body as received. Parts without a
    filename (QField's `text`, form fields) are also kept as text fields."""
    if media_type(request) != MULTIPART:
        return MultipartBody()
    reader = _PartsReader(request.headers.get("content-type", ""))
    return reader.read_whole(_body_bytes(request))


def stream_multipart(content_type: str, read: Callable[[int], bytes], file_data: Callable[[bytes], None],
                     file_part: str = "file") -> MultipartBody:
    """A multipart body read as it arrives (`read(n)` gives at most n bytes, b"" at its end): the
    bytes of the one part named `file_part` go to `file_data` as they come, never held whole;
    the other parts are kept, as `multipart` keeps them, within MAX_FORM_BODY_BYTES in all. The
    same refusals as `multipart`, and 400 `empty_content` or `multiple_contents` for the file
    part, as soon as they are known."""
    if content_type.split(";")[0].strip().lower() != MULTIPART:
        raise EmptyContent(f"Send the content as multipart/form-data, in a part named `{file_part}`.")
    reader = _PartsReader(content_type, streamed=file_part, sink=file_data)
    body = reader.read_stream(read)
    if not reader.streamed_parts:
        raise EmptyContent(f"Send the content in a multipart part named `{file_part}`.")
    return body


class JsonRefused(ValueError):
    """Why a JSON text was refused, in words a client can act on."""


def parse_json(raw: bytes | str) -> Any:
    """JSON text as Python values; `JsonRefused` if it is not valid, nests too deeply (the
    parser would otherwise exhaust the stack) or repeats a key in an object (parsers disagree
    on which value wins: no reading of ours may differ from another's)."""
    try:
        return json.loads(raw, object_pairs_hook=_object_without_repeated_keys)
    except RecursionError:
        raise JsonRefused("The JSON nests too deeply.") from None
    except JsonRefused:
        raise
    except (ValueError, UnicodeDecodeError):
        raise JsonRefused("The body is not valid JSON.") from None


def _object_without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise JsonRefused("A JSON object repeats a key.")
    return data


def _body_fields(request) -> dict[str, Any]:
    kind = media_type(request)
    if kind == MULTIPART:
        return dict(multipart(request).fields)
    raw = _raw_body(request)
    if len(raw) > MAX_FORM_BODY_BYTES:
        raise PayloadTooLarge(f"A JSON or form body is at most {MAX_FORM_BODY_BYTES} bytes.")
    if not raw.strip():
        return {}
    if kind == "application/x-www-form-urlencoded":
        try:
            parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise BadRequest("The form body is not valid UTF-8.") from None
        return {key: values[-1] for key, values in parsed.items()}
    if kind in ("application/json", "", "text/plain") or kind.endswith("+json"):
        try:
            data = parse_json(raw)
        except JsonRefused as refused:
            raise BadRequest(str(refused)) from None
        if not isinstance(data, dict):
            raise BadRequest("The JSON body must be an object.")
        return data
    raise BadRequest(f"Unsupported content type `{kind}`.")


def body(request, model: type[M], **extra: Any) -> M:
    """The request body as `model`, whatever the encoding the client chose; `extra` adds values
    that come from elsewhere (the URL, headers)."""
    return model.model_validate({**_body_fields(request), **extra})


def query_param(request, *names: str) -> str | None:
    """The last value of the first of `names` present in the query string."""
    params = request.query_params or {}
    for name in names:
        if name in params:
            values = params.getlist(name) if hasattr(params, "getlist") else [params[name]]
            return values[-1]
    return None


def query(request, model: type[M], **extra: Any) -> M:
    """The query string as `model` (the last value of a repeated parameter wins)."""
    params = request.query_params or {}
    return model.model_validate({**{name: query_param(request, name) for name in params}, **extra})


def deltafile(request) -> Deltafile:
    """The deltafile in the multipart part `file` (QField adds a `text` part, which is ignored).
    Its bytes are UTF-8 JSON; the escaped NUL (`\\u0000`) QField may write is dropped, as
    QFieldCloud does. 400 `invalid_deltafile` if it is not one."""
    part = multipart(request).single("file")
    part.stream.seek(0)
    try:
        data = parse_json(part.stream.read().decode("utf-8").replace("\\u0000", ""))
    except UnicodeDecodeError:
        raise InvalidDeltafile("The deltafile is not valid UTF-8 JSON.") from None
    except JsonRefused as refused:
        raise InvalidDeltafile(f"Invalid deltafile. {refused}") from None
    if not isinstance(data, dict):
        raise InvalidDeltafile("A deltafile is a JSON object.")
    count = len(data["deltas"]) if isinstance(data.get("deltas"), list) else 0
    if count > Deltafile.MAX_DELTAS:
        raise PayloadTooLarge(f"A deltafile holds at most {Deltafile.MAX_DELTAS} deltas here; this one "
                              f"has {count}. Push the changes in several deltafiles.")
    return Deltafile.model_validate(data)
