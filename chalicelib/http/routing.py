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
- Who may call is declared, and the declaration is what is enforced: `Doc(auth=...)` (or, for a
  route outside the API, `route(auth=...)`) says `token`, `optional` or `none`, and the router
  resolves the caller accordingly before the view runs, handing it over as `caller`. A token that
  is sent is checked wherever one is read (a bad one is a 401 even where none is needed, as in
  QFieldCloud). Views never read the Authorization header themselves.
- Every API route declares what it does for the OpenAPI document (`doc=Doc(...)`): its input and
  output models, statuses and errors. `openapi` builds the document from the app's route table
  and these declarations; tests/test_openapi.py checks that none is missing.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from chalice import Blueprint, Chalice, Response

from chalicelib.errors import (
    ApiError,
    MethodNotAllowed,
    NotAuthenticated,
    TokenAuthenticationFailed,
    ValidationError,
    as_api_error,
    error_body,
)
from chalicelib.http.request_data import Deferred
from chalicelib.observability import logger
from chalicelib.services import auth as tokens
from chalicelib.services.auth import Caller

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
# Who may call an operation: `token`, a caller with a valid token (the view gets it as `caller`);
# `optional`, anyone (the view gets the caller, or None); `none`, anyone, and the token is not
# even read (the view gets no `caller`).
Auth = Literal["token", "optional", "none"]
# The request of the view running in this thread (Router.request).
_REQUEST: contextvars.ContextVar[Any] = contextvars.ContextVar("request")


def parse_uuid(value: str, what: str = "id") -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValidationError(f"`{value}` is not a valid {what} (a UUID is expected).") from None


def file_path_route(prefix: str) -> str:
    """The route that stands for `prefix/<filename>`, whatever the depth of the file name."""
    return prefix.rstrip("/") + "/{" + FILENAME + "+}"


def decode_params(params: dict[str, str]) -> dict[str, str]:
    """Path parameters as a view gets them: decoded once, names normalized, ids checked."""
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


def _token_key(headers: Mapping[str, str]) -> str | None:
    """The key of `Authorization: Token <key>`; None without a token (another scheme too).
    `headers` is case-insensitive, or has lower-case names."""
    header = (headers.get("authorization") or "").strip()
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "token":
        return None
    key = key.strip()
    if not key:
        raise TokenAuthenticationFailed()
    return key


def resolve_caller(headers: Mapping[str, str], auth: Auth) -> Caller | None:
    """The caller as `auth` declares it: a token sent is always checked; a `token` operation
    without one is 401 `not_authenticated`."""
    key = _token_key(headers)
    caller = None if key is None else tokens.caller_with_token(key)
    if caller is None and auth == "token":
        raise NotAuthenticated()
    return caller


def _run_view(view: Callable[..., Any], request, auth: Auth, early: Callable[[Any], Any] | None) -> Any:
    """The view's answer. Its arguments: the decoded path parameters, then `early` (what the
    route reads of the request before the caller is known, as a `Deferred`), then the `caller`."""
    context = request.context if request is not None else {}
    logger.append_keys(method=context.get("httpMethod"), route=context.get("resourcePath"))
    try:
        arguments: dict[str, Any] = decode_params(dict(request.uri_params or {}))
        if early is not None:
            arguments["early"] = Deferred(lambda: early(request))
        if auth != "none":
            arguments["caller"] = resolve_caller(request.headers, auth)
        return view(**arguments)
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
    `list[...]` of one, or a union), None for no body. `auth` says who may call (`Auth`): the
    router enforces it. `body` is the input model of a JSON or form
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
    auth: Auth = "token"
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
        """The request of the view running now, as the router took it when the view began: Chalice
        keeps one `current_request` per app, which the local stack's threads share."""
        return _REQUEST.get()

    def route(self, path: str, methods: Iterable[str] = ("GET",), doc: Doc | Mapping[str, Doc] | None = None,
              *, auth: Auth | None = None, early: Callable[[Any], Any] | None = None):
        """`doc`: one declaration for every method, or one per method; its `auth` says who may
        call. `auth`: the same for a route outside the API, which has no `Doc` (by default
        `token`). `early`: what the view reads of the request before the caller is resolved
        (the view gets it as `early`, a `Deferred`: what is wrong with it is answered after what
        is wrong with the caller)."""
        return self._register(_strip_slash(path), methods, doc, auth, early)

    def file_route(self, prefix: str, methods: Iterable[str] = ("GET",),
                   doc: Doc | Mapping[str, Doc] | None = None, *, early: Callable[[Any], Any] | None = None):
        """A route ending in a file path; the view takes a `filename` argument."""
        return self._register(file_path_route(prefix), methods, doc, None, early)

    def _register(self, path: str, methods: Iterable[str], doc: Doc | Mapping[str, Doc] | None,
                  auth: Auth | None, early: Callable[[Any], Any] | None):
        methods = list(methods)
        docs = {method: doc for method in methods} if isinstance(doc, Doc) else dict(doc or {})
        if docs and auth is not None:
            raise ValueError(f"{path}: a documented route declares its auth in its Doc")
        auths = {method: docs[method].auth if method in docs else auth or "token" for method in methods}

        def decorator(view: Callable[..., Any]):
            _check_arguments(view, set(auths.values()), early is not None)

            @functools.wraps(view)
            def wrapper(**_: str) -> Any:
                request = self.blueprint.current_request
                taken = _REQUEST.set(request)
                try:
                    return _run_view(view, request, auths[request.method], early)
                finally:
                    _REQUEST.reset(taken)

            setattr(wrapper, DOCS_ATTRIBUTE, {"tag": self.tag, "methods": docs, "auth": auths})
            self.blueprint.route(path, methods=methods, content_types=ANY_CONTENT_TYPE)(wrapper)
            return view

        return decorator


def _check_arguments(view: Callable[..., Any], auths: set[str], early: bool) -> None:
    """A view takes `caller` exactly when its route resolves one, and `early` when it reads
    some of the request first: a declaration the view does not match fails at import."""
    parameters = inspect.signature(view).parameters
    takes_caller = {auth != "none" for auth in auths}
    if len(takes_caller) > 1 or ("caller" in parameters) != takes_caller.pop():
        raise TypeError(f"{view.__name__} must take `caller` exactly when its route's auth is not `none`")
    if ("early" in parameters) != early:
        raise TypeError(f"{view.__name__} must take `early` exactly when its route reads early")


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
