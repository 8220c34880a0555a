"""Reading what a request carries: JSON, form-urlencoded and multipart bodies, query parameters.

The SDK sends form bodies, QField sends JSON; both reach views as the same plain dict. Typed
getters turn wrong types into 400 `validation_error` naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile
from typing import IO, Any
from urllib.parse import parse_qs

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from .errors import BadRequest, ValidationError

SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024
TRUE_STRINGS = {"1", "true"}
FALSE_STRINGS = {"0", "false"}


def media_type(request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _raw_body(request) -> bytes:
    body = request.raw_body
    if isinstance(body, str):
        body = body.encode("utf-8")
    return body or b""


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    stream: IO[bytes]
    size: int = 0


@dataclass
class MultipartBody:
    fields: dict[str, str] = field(default_factory=dict)
    parts: list[Part] = field(default_factory=list)

    def parts_named(self, name: str) -> list[Part]:
        return [part for part in self.parts if part.name == name]


def parse_multipart(request) -> MultipartBody:
    """Stream a multipart body into parts; each part's bytes live in a spooled temporary file."""
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("A multipart body needs a boundary in its Content-Type header.")
    result = MultipartBody()
    state: dict[str, Any] = {}

    def on_part_begin() -> None:
        state.update(headers={}, field=b"", value=b"")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"]
        state.update(field=b"", value=b"")

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state["headers"].get("content-disposition", b""))
        filename = disposition.get(b"filename")
        content_type = state["headers"].get("content-type")
        part = Part(
            name=disposition.get(b"name", b"").decode("utf-8", "replace"),
            filename=filename.decode("utf-8", "replace") if filename is not None else None,
            content_type=content_type.decode("latin-1") if content_type else None,
            stream=SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES),  # noqa: SIM115
        )
        state["part"] = part
        result.parts.append(part)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = state["part"]
        part.stream.write(data[start:end])
        part.size += end - start

    def on_part_end() -> None:
        part = state.pop("part")
        part.stream.seek(0)
        if part.filename is None and part.size <= SPOOL_IN_MEMORY_BYTES:
            result.fields[part.name] = part.stream.read().decode("utf-8", "replace")
            part.stream.seek(0)

    parser = MultipartParser(
        boundary,
        callbacks={
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(_raw_body(request))
        parser.finalize()
    except (MultipartParseError, KeyError) as exc:
        raise BadRequest(f"Malformed multipart body: {exc}") from None
    if parser.state != MultipartState.END:
        raise BadRequest("Malformed multipart body: it ends before its closing boundary.")
    return result


def body_fields(request) -> dict[str, Any]:
    """The request body as a dict, whatever the encoding the client chose."""
    raw = _raw_body(request)
    kind = media_type(request)
    if kind == "multipart/form-data":
        return dict(parse_multipart(request).fields)
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
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"Malformed JSON body: {exc}") from None
        if not isinstance(data, dict):
            raise BadRequest("The JSON body must be an object.")
        return data
    raise BadRequest(f"Unsupported content type `{kind}`.")


def query_param(request, *names: str) -> str | None:
    """The last value of the first of `names` present in the query string."""
    params = request.query_params or {}
    for name in names:
        if name in params:
            values = params.getlist(name) if hasattr(params, "getlist") else [params[name]]
            return values[-1]
    return None


def to_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in TRUE_STRINGS:
            return True
        if lowered in FALSE_STRINGS:
            return False
    raise ValidationError(f"`{name}` must be a boolean (true/false/1/0).")


def get_bool(data: dict[str, Any], name: str, default: bool | None = None) -> bool | None:
    if name not in data or data[name] is None:
        return default
    return to_bool(data[name], name)


def get_str(
    data: dict[str, Any], name: str, *, required: bool = False, default: str | None = None
) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise ValidationError(f"`{name}` is required.")
        return default
    if not isinstance(value, str):
        raise ValidationError(f"`{name}` must be a string.")
    return value


def to_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValidationError(f"`{name}` must be an integer.")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValidationError(f"`{name}` must be an integer.")
