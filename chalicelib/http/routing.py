"""How URLs reach views: the one routing mechanism, identical behind API Gateway and locally.

Rules (docs/routing.md explains why):
- Routes are registered without their trailing slash; API Gateway matches `/x/` to resource `/x`,
  and so does the local gateway (`devstack.gateway`). Both forms are therefore accepted.
- File names contain `/`. A route that ends in a file path is one route with a greedy last
  parameter, `prefix/{filename+}`: API Gateway gives it every remaining segment, and so does the
  local gateway. Chalice does not pass greedy parameters to views itself, so every view takes its
  parameters from the request (`uri_params`), here.
- Path parameters arrive percent-encoded (API Gateway REST does not decode them); they are
  decoded here, once. Parameters named in `UUID_PARAMS` must be UUIDs (else 400
  `validation_error`) and reach the view in canonical lowercase form.
- Every route answers every method of `HTTP_METHODS`: `add_method_fallbacks` registers a 405
  view for the ones a path does not implement, so API Gateway forwards them to us.
- Every view runs inside `_run_view`, which turns any exception into the JSON error of
  `chalicelib.errors` and logs unexpected ones with the request id.
- Every API route declares what it does for the OpenAPI document (`doc=Doc(...)`): its input and
  output models, statuses and errors. `openapi` builds the document from the app's route table
  and these declarations; tests/test_openapi.py checks that none is missing.
"""

from __future__ import annotations

import functools
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from chalice import Blueprint, Chalice, Response

from chalicelib.errors import ApiError, MethodNotAllowed, ValidationError, as_api_error, error_body
from chalicelib.observability import logger

API_PREFIX = "/api/v1"
# Every method API Gateway can route; those a path does not implement answer a JSON 405.
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
UUID_PARAMS = frozenset({"project_id", "job_id", "deltafile_id", "upload_id"})
FILENAME = "filename"
# Every other path parameter names an account (user, organization, team): as long as a username.
MAX_NAME_PARAM_CHARS = 150
# A file name is a DynamoDB sort key: 1 to 1024 bytes (uploads allow less: file_rules).
MAX_FILENAME_BYTES = 1024
ANY_CONTENT_TYPE = ["*/*"]


def parse_uuid(value: str, what: str = "id") -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValidationError(f"`{value}` is not a valid {what} (a UUID is expected).") from None


def file_path_route(prefix: str) -> str:
    """The route that stands for `prefix/<filename>`, whatever the depth of the file name."""
    return prefix.rstrip("/") + "/{" + FILENAME + "+}"


def _decode_params(params: dict[str, str]) -> dict[str, str]:
    decoded: dict[str, str] = {}
    for name, value in params.items():
        try:
            value = unquote(value, errors="strict")
        except UnicodeDecodeError:
            raise ValidationError(f"The {name.replace('_', ' ')} in the URL is not valid UTF-8.") from None
        if name == FILENAME:
            # The clients' trailing slash goes; names have one Unicode form (NFC) everywhere.
            value = unicodedata.normalize("NFC", value.removesuffix("/"))
        if name in UUID_PARAMS:
            value = parse_uuid(value, name.replace("_", " "))
        elif name == FILENAME and not 0 < len(value.encode("utf-8")) <= MAX_FILENAME_BYTES:
            raise ValidationError(f"A file name has 1 to {MAX_FILENAME_BYTES} bytes in UTF-8.")
        elif name != FILENAME and not 0 < len(value) <= MAX_NAME_PARAM_CHARS:
            raise ValidationError(f"A {name.replace('_', ' ')} has 1 to {MAX_NAME_PARAM_CHARS} characters.")
        decoded[name] = value
    return decoded


def _respond_with_error(error: ApiError) -> Response:
    headers = {"Content-Type": "application/json", **error.headers}
    return Response(body=error_body(error), status_code=error.status, headers=headers)


def _run_view(view: Callable[..., Any], request) -> Any:
    context = request.context if request is not None else {}
    logger.append_keys(method=context.get("httpMethod"), route=context.get("resourcePath"))
    try:
        return view(**_decode_params(dict(request.uri_params or {})))
    except Exception as exc:  # the one place where exceptions become responses
        error = as_api_error(exc)
        if error is exc or error.status < 500:  # an API error, or input that broke a rule
            logger.info("Request refused", extra={"status": error.status, "code": error.code})
        else:
            logger.exception("Unexpected error while serving the request")
        return _respond_with_error(error)


@dataclass(frozen=True)
class Doc:
    """What the OpenAPI document says about one operation (a method of a route).

    `returns` is the type of the success body (an output model of `outputs`, a
    `list[...]` of one, or a union), None for no body. `body` is the input model of a JSON or form
    body, `query` that of the query string; `parts` describes a multipart body (part name → the
    input model of a JSON part, or None for bytes). `errors` are the error classes this operation
    raises beyond those every operation of its kind may (openapi adds those).
    """

    summary: str
    returns: Any = None
    status: int = 200
    body: Any = None
    query: Any = None
    parts: Mapping[str, Any] | None = None
    auth: Literal["token", "optional"] = "token"
    paginated: bool = False
    errors: tuple[type[ApiError], ...] = ()
    description: str = ""
    other_responses: Mapping[int, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # request headers it reads


# Where a view's declarations are kept: on the function Chalice registers, one per method.
DOCS_ATTRIBUTE = "openapi_docs"


class Router:
    """A Chalice blueprint whose routes follow the rules of this module. `tag` groups its
    operations in the OpenAPI document."""

    def __init__(self, import_name: str, tag: str | None = None):
        self.blueprint = Blueprint(import_name)
        self.tag = tag or import_name.rsplit(".", 1)[-1]

    @property
    def request(self):
        return self.blueprint.current_request

    def route(self, path: str, methods: Iterable[str] = ("GET",), doc: Doc | Mapping[str, Doc] | None = None):
        """`doc`: one declaration for every method, or one per method."""
        return self._register(_strip_slash(path), methods, doc)

    def file_route(self, prefix: str, methods: Iterable[str] = ("GET",),
                   doc: Doc | Mapping[str, Doc] | None = None):
        """A route ending in a file path; the view takes a `filename` argument."""
        return self._register(file_path_route(prefix), methods, doc)

    def _register(self, path: str, methods: Iterable[str], doc: Doc | Mapping[str, Doc] | None):
        methods = list(methods)
        docs = {method: doc for method in methods} if isinstance(doc, Doc) else dict(doc or {})

        def decorator(view: Callable[..., Any]):
            @functools.wraps(view)
            def wrapper(**_: str) -> Any:
                return _run_view(view, self.blueprint.current_request)

            setattr(wrapper, DOCS_ATTRIBUTE, {"tag": self.tag, "methods": docs})
            self.blueprint.route(path, methods=methods, content_types=ANY_CONTENT_TYPE)(wrapper)
            return view

        return decorator


def _strip_slash(path: str) -> str:
    return path.rstrip("/") or "/"


def add_method_fallbacks(app: Chalice) -> None:
    """Answer the methods a route does not implement with a JSON 405 (call after registering)."""

    implemented = {path: ", ".join(sorted(entries)) for path, entries in app.routes.items()}

    def method_not_allowed(**_: str) -> Response:
        allowed = implemented.get(app.current_request.context["resourcePath"], "")
        return _respond_with_error(MethodNotAllowed(headers={"Allow": allowed}))

    for path, entries in list(app.routes.items()):
        missing = [method for method in HTTP_METHODS if method not in entries]
        if missing:
            app.route(path, methods=missing, content_types=ANY_CONTENT_TYPE)(method_not_allowed)
