"""Reading what a request carries (JSON, form-urlencoded and multipart bodies, query parameters)
into the typed inputs of `chalicelib.inputs`. Used by handlers only: services never see a request.

The SDK sends form bodies, QField sends JSON; both become the same input model. A body that
cannot be read is a 400 `api_error`; a readable body whose fields are wrong is a pydantic
validation error, which the error mapping turns into 400 `validation_error`.
"""

from __future__ import annotations

import binascii
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from tempfile import SpooledTemporaryFile
from typing import IO, Any, TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel
from python_multipart import FormParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartState, parse_options_header

from .errors import BadRequest, EmptyContent, InvalidDeltafile, MultipleContents, PayloadTooLarge
from .inputs import Deltafile

SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024
# A multipart file part beyond this goes to a temporary file while it is parsed.
PART_IN_MEMORY_BYTES = 1024 * 1024
# Base64 characters decoded at a time (a multiple of 4): the body is never decoded whole.
DECODE_CHARS = 4 * 1024 * 1024
# A synchronous Lambda invocation carries at most 6 MB of event, so on AWS a binary body this
# large never reaches the function (API Gateway refuses it first). Only the local stack, with
# its larger direct-upload limit, delivers such a body, and it does so unencoded: base64 would
# be a local-only cost (an encode and a decode of every byte, the bulk of a large upload's time).
LAMBDA_EVENT_BYTES = 6 * 1024 * 1024
MULTIPART = "multipart/form-data"
MAX_BOUNDARY_CHARS = 70  # RFC 2046
# The clients send two parts (QField's `text` and `file`); a body of thousands is refused.
MAX_PARTS = 100
# JSON and form bodies of this API are a few hundred bytes; files travel as multipart.
MAX_FORM_BODY_BYTES = 1024 * 1024

M = TypeVar("M", bound=BaseModel)


def media_type(request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _raw_body(request) -> bytes:
    body = request.raw_body
    if isinstance(body, str):
        body = body.encode("utf-8")
    return body or b""


def _body_chunks(request) -> Iterator[bytes]:
    """The body in chunks, decoded from the event as it arrived (base64 for binary types, as API
    Gateway sends them): a large body is in memory once, as received, not a second time decoded."""
    event = request.to_original_event()
    body = event.get("body")
    if not body:
        return
    if not event.get("isBase64Encoded"):
        whole = memoryview(body.encode("utf-8") if isinstance(body, str) else body)
        for start in range(0, len(whole), DECODE_CHARS):
            yield bytes(whole[start:start + DECODE_CHARS])
        return
    whole = body if isinstance(body, str) else memoryview(body)
    for start in range(0, len(whole), DECODE_CHARS):
        piece = whole[start:start + DECODE_CHARS]
        try:
            yield binascii.a2b_base64(piece.encode("ascii") if isinstance(piece, str) else piece,
                                      strict_mode=True)
        except (binascii.Error, ValueError):
            raise BadRequest("The body is not valid base64.") from None


@dataclass
class Part:
    """One part of a multipart body; its bytes are spooled (on disk beyond 8 MiB). The part's
    own filename and content type are not kept: clients put device paths and arbitrary types
    there, and the target name always comes from the URL."""

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


def _spooled(source: IO[bytes]) -> IO[bytes]:
    copy = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115 (outlives the call)
    source.seek(0)
    while chunk := source.read(1024 * 1024):
        copy.write(chunk)
    copy.seek(0)
    return copy


def multipart(request) -> MultipartBody:
    """The parts of a multipart body, parsed by python-multipart's form parser. Parts without a
    filename (QField's `text`, form fields) are also kept as text fields."""
    if media_type(request) != MULTIPART:
        return MultipartBody()
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("A multipart body needs a boundary in its Content-Type header.")
    if len(boundary) > MAX_BOUNDARY_CHARS:
        raise BadRequest(f"A multipart boundary has at most {MAX_BOUNDARY_CHARS} characters.")
    body = MultipartBody()

    def count_part() -> None:
        if len(body.parts) >= MAX_PARTS:
            raise BadRequest(f"A multipart body has at most {MAX_PARTS} parts.")

    def on_field(field) -> None:
        count_part()
        value = field.value or b""
        name = (field.field_name or b"").decode("utf-8", "replace")
        body.fields[name] = value.decode("utf-8", "replace")
        body.parts.append(Part(name, _spooled(io.BytesIO(value)), len(value)))

    def on_file(file) -> None:
        count_part()
        name = (file.field_name or b"").decode("utf-8", "replace")
        stream = file.file_object
        stream.seek(0)
        body.parts.append(Part(name, stream, file.size))

    parser = FormParser(
        MULTIPART, on_field, on_file, boundary=boundary,
        config={"MAX_MEMORY_FILE_SIZE": PART_IN_MEMORY_BYTES, "UPLOAD_DELETE_TMP": True},
    )
    try:
        for chunk in _body_chunks(request):
            parser.write(chunk)
        parser.finalize()
    except (FormParserError, KeyError, ValueError):
        raise BadRequest("The multipart body is malformed.") from None
    if parser.parser.state != MultipartState.END:
        raise BadRequest("The multipart body ends before its closing boundary.")
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
