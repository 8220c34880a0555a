"""The OpenAPI 3.1 document of `/api/v1/`, generated from the code: the app's route table gives
the paths and methods, each route's `Doc` (routing) what it takes and answers, and the pydantic
models of `chalicelib.services.inputs` and `outputs` the schemas (their JSON Schema, which
OpenAPI 3.1 uses as it is). Nothing here is written by hand but the prose.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

from chalice import Chalice
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

from chalicelib import errors
from chalicelib.http.outputs import ErrorOut
from chalicelib.http.pagination import MAX_CURSOR_CHARS
from chalicelib.http.routing import (
    API_PREFIX,
    DOCS_ATTRIBUTE,
    FILENAME,
    MAX_NAME_PARAM_CHARS,
    UUID_PARAMS,
    Doc,
)

OPENAPI_VERSION = "3.1.0"
TITLE = "QFieldCloud (serverless) API"
API_VERSION = "1"
SCHEMAS = "#/components/schemas/{model}"
TOKEN_SCHEME = "TokenAuth"
PAGE_HEADERS = ("X-Total-Count", "X-Next-Page", "X-Previous-Page")
_PARAM = re.compile(r"\{([^}+]+)\+?\}")

DESCRIPTION = """\
A QFieldCloud-compatible sync server for QField and `qfieldcloud-cli`, serverless on AWS.

**Authentication**: `POST /auth/login/` answers a `token`; send it as
`Authorization: Token <token>` (in Swagger UI: *Authorize*, then type `Token <token>`).

**Errors** are always JSON `{"code", "message"}`; each response below names the codes it may carry.

**Lists** are bare JSON arrays. Where an operation says *paginated*, `limit` (and `offset`) ask
for a page, and the headers `X-Total-Count`, `X-Next-Page` and `X-Previous-Page` describe the
others: follow the `X-Next-Page` URL as it is to get the next page (its `cursor` makes that page
cost the same however deep it lies).

Paths end with `/` (the form without it works too). A `{filename}` may contain `/`.
"""

PAGE_PARAMETERS = ("limit", "offset", "cursor")

# The errors any operation of a kind may answer, beside those its `Doc` names.
AUTH_ERRORS = (errors.NotAuthenticated, errors.AuthenticationFailed, errors.TokenAuthenticationFailed)
INPUT_ERRORS = (errors.ValidationError, errors.BadRequest)
BODY_ERRORS = (errors.PayloadTooLarge,)


def _error_classes() -> Iterator[type[errors.ApiError]]:
    pending = [errors.ApiError]
    while pending:
        cls = pending.pop()
        yield cls
        pending.extend(cls.__subclasses__())


ALL_ERROR_CODES = sorted({cls.code for cls in _error_classes()})


def openapi_path(route: str) -> str:
    """`/api/v1/files/{project_id}/{filename+}` → `/files/{project_id}/{filename}/`."""
    path = route.removeprefix(API_PREFIX)
    return _PARAM.sub(r"{\1}", path).rstrip("/") + "/"


def documented_routes(app: Chalice) -> Iterator[tuple[str, str, Doc | None, str]]:
    """(route, method, its Doc or None, tag) for every API route and method the views serve
    (the 405 fallbacks left out)."""
    for route, entries in app.routes.items():
        if not route.startswith(API_PREFIX + "/"):
            continue
        for method, entry in entries.items():
            declared = getattr(entry.view_function, DOCS_ATTRIBUTE, None)
            if declared is None:
                if entry.view_name == "method_not_allowed":
                    continue
                yield route, method, None, ""
                continue
            yield route, method, declared["methods"].get(method), declared["tag"]


class _Schemas:
    """Every model's JSON Schema, generated together so that they share `components.schemas`."""

    def __init__(self) -> None:
        self._wanted: list[tuple[tuple[Any, str], str, Any]] = []
        self._keys: dict[tuple[Any, str], dict[str, Any]] = {}

    def ref(self, annotation: Any, mode: str) -> dict[str, Any]:
        """A placeholder filled in by `resolve`: the schema of `annotation` in `mode`."""
        key = (annotation, mode)
        placeholder = self._keys.get(key)
        if placeholder is None:
            placeholder = self._keys[key] = {}
            self._wanted.append((key, mode, TypeAdapter(annotation).core_schema))
        return placeholder

    def resolve(self) -> dict[str, Any]:
        generator = GenerateJsonSchema(ref_template=SCHEMAS)
        schemas, definitions = generator.generate_definitions(self._wanted)
        for (key, _mode), schema in schemas.items():
            self._keys[key].update(schema)
        return definitions


def _path_parameter(name: str) -> dict[str, Any]:
    if name in UUID_PARAMS:
        schema: dict[str, Any] = {"type": "string", "format": "uuid"}
        description = f"The {name.replace('_', ' ')} (a UUID)"
    elif name == FILENAME:
        schema = {"type": "string", "minLength": 1, "maxLength": 1024}
        description = "The file's path in the project; it may contain `/`"
    else:
        schema = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_PARAM_CHARS}
        description = f"The {name.replace('_', ' ')}'s name"
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def _query_parameters(model: Any) -> list[dict[str, Any]]:
    schema = TypeAdapter(model).json_schema(ref_template=SCHEMAS)
    required = set(schema.get("required", ()))
    parameters = []
    for name, field_schema in schema.get("properties", {}).items():
        field_schema = _not_null({key: value for key, value in field_schema.items()
                                  if key != "title" and (key != "default" or value is not None)})
        description = field_schema.pop("description", "")
        parameter = {"name": name, "in": "query", "required": name in required, "schema": field_schema}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query value is a string or absent, never null: `X | None` becomes `X`."""
    options = [option for option in schema.get("anyOf", ()) if option != {"type": "null"}]
    if len(options) != 1:
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**options[0], **rest}


def _error_response(classes: list[type[errors.ApiError]]) -> dict[str, Any]:
    codes = sorted({cls.code for cls in classes})
    return {
        "description": "Codes: " + ", ".join(f"`{code}`" for code in codes),
        "content": {"application/json": {"schema": {"$ref": SCHEMAS.format(model="ErrorOut")}}},
    }


def _errors_of(doc: Doc, route: str) -> dict[int, list[type[errors.ApiError]]]:
    has_path_params = "{" in route
    found: list[type[errors.ApiError]] = list(AUTH_ERRORS) if doc.auth != "none" else []
    if doc.auth == "token":
        found.append(errors.PermissionDenied)
    if has_path_params or doc.body is not None or doc.query is not None or doc.parts:
        found.extend(INPUT_ERRORS)
    if has_path_params:
        found.append(errors.ObjectNotFound)
    if doc.body is not None or doc.parts:
        found.extend(BODY_ERRORS)
    found.extend(doc.errors)
    by_status: dict[int, list[type[errors.ApiError]]] = {}
    for cls in found:
        by_status.setdefault(cls.status, []).append(cls)
    return dict(sorted(by_status.items()))


def _body(doc: Doc, schemas: _Schemas) -> dict[str, Any] | None:
    if doc.parts:
        properties, encoding = {}, {}
        for name, model in doc.parts.items():
            if model is None:
                properties[name] = {"type": "string", "format": "binary"}
            else:
                properties[name] = schemas.ref(model, "validation")
                encoding[name] = {"contentType": "application/json"}
        media: dict[str, Any] = {"schema": {"type": "object", "properties": properties,
                                            "required": list(doc.parts)}}
        if encoding:
            media["encoding"] = encoding
        return {"required": True, "content": {"multipart/form-data": media}}
    if doc.body is None:
        return None
    schema = schemas.ref(doc.body, "validation")
    return {
        "required": True,
        "content": {media_type: {"schema": schema} for media_type in
                    ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")},
    }


def _success(doc: Doc, schemas: _Schemas) -> dict[str, Any]:
    response: dict[str, Any] = {"description": "Success" if doc.status < 300 else "Redirect"}
    if doc.returns is not None:
        response["content"] = {"application/json": {"schema": schemas.ref(doc.returns, "serialization")}}
    if doc.paginated:
        response["description"] = "Success (with `limit`: one page, described by the headers)"
        response["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in PAGE_HEADERS}
    if doc.status in (301, 302, 303, 307):
        response["headers"] = {"Location": {"description": "Where to go", "schema": {"type": "string"}}}
    return response


def _operation(route: str, method: str, doc: Doc, tag: str, schemas: _Schemas) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": [tag],
        "summary": doc.summary,
        "operationId": _operation_id(route, method),
    }
    if doc.description:
        operation["description"] = doc.description
    parameters = [_path_parameter(name) for name in _PARAM.findall(route)]
    if doc.query is not None:
        parameters.extend(_query_parameters(doc.query))
    if doc.paginated:
        parameters.extend({"$ref": f"#/components/parameters/{name}"} for name in PAGE_PARAMETERS)
    parameters.extend({"name": name, "in": "header", "required": False, "description": description,
                       "schema": {"type": "string"}} for name, description in doc.headers.items())
    if parameters:
        operation["parameters"] = parameters
    if (body := _body(doc, schemas)) is not None:
        operation["requestBody"] = body
    responses: dict[str, Any] = {str(doc.status): _success(doc, schemas)}
    for status, description in doc.other_responses.items():
        responses[str(status)] = {"description": description}
    for status, classes in _errors_of(doc, route).items():
        responses[str(status)] = _error_response(classes)
    responses["default"] = _error_response([errors.ApiError])
    operation["responses"] = responses
    operation["security"] = {"token": [{TOKEN_SCHEME: []}], "optional": [{}, {TOKEN_SCHEME: []}],
                             "none": [{}]}[doc.auth]
    return operation


def _operation_id(route: str, method: str) -> str:
    words = [segment.strip("{}+") for segment in openapi_path(route).split("/") if segment]
    return "_".join([method.lower(), *words]).replace("-", "_").replace(".", "_")


def _components(schemas: dict[str, Any]) -> dict[str, Any]:
    page_number = {"type": "integer", "minimum": 1}
    return {
        "schemas": schemas,
        "parameters": {
            "limit": {"name": "limit", "in": "query", "required": False, "schema": page_number,
                      "description": "Answer one page of this many items (without it, the whole list)"},
            "offset": {"name": "offset", "in": "query", "required": False,
                       "schema": {"type": "integer", "minimum": 0},
                       "description": "With `limit`: skip this many items"},
            "cursor": {"name": "cursor", "in": "query", "required": False,
                       "schema": {"type": "string", "maxLength": MAX_CURSOR_CHARS},
                       "description": "With `limit` and `offset`: where the page before ended, as "
                                      "`X-Next-Page` carries it (opaque; without it the offset decides)"},
        },
        "headers": {
            "X-Total-Count": {"description": "With `limit`: how many items the whole list has (projects "
                                             "in the default order: before the last page, a lower "
                                             "bound, the items up to this page's end plus one)",
                              "schema": {"type": "integer", "minimum": 0}},
            "X-Next-Page": {"description": "With `limit`: the URL of the next page, when there is one",
                            "schema": {"type": "string"}},
            "X-Previous-Page": {"description": "With `limit` and an offset: the URL of the previous page",
                                "schema": {"type": "string"}},
        },
        "securitySchemes": {
            TOKEN_SCHEME: {
                "type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <token>`, the token `POST /auth/login/` answers",
            },
        },
    }


def build(app: Chalice) -> dict[str, Any]:
    """The document for `app`'s routes. Raises if a route has no declaration (tests catch it)."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, None] = {}
    for route, method, doc, tag in documented_routes(app):
        if doc is None:
            raise ValueError(f"{method} {route} has no OpenAPI declaration (doc=...)")
        tags[tag] = None
        paths.setdefault(openapi_path(route), {})[method.lower()] = _operation(route, method, doc, tag,
                                                                                 schemas)
    schemas.ref(ErrorOut, "serialization")
    definitions = schemas.resolve()
    _list_error_codes(definitions)
    components = _components(definitions)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": TITLE, "version": API_VERSION, "description": DESCRIPTION,
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "servers": [{"url": API_PREFIX}],
        "tags": [{"name": tag} for tag in tags],
        "paths": dict(sorted(paths.items())),
        "components": components,
        "security": [{TOKEN_SCHEME: []}],
    }


def _list_error_codes(definitions: dict[str, Any]) -> None:
    code = definitions["ErrorOut"]["properties"]["code"]
    code["enum"] = ALL_ERROR_CODES


@functools.cache
def cached(app: Chalice) -> dict[str, Any]:
    return build(app)


def for_server(app: Chalice, server_root: str) -> dict[str, Any]:
    """The document with its server URL: `server_root` (the public URL, or API Gateway's stage
    path) before `/api/v1`."""
    return {**cached(app), "servers": [{"url": server_root.rstrip("/") + API_PREFIX}]}
