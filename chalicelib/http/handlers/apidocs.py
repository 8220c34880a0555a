"""The API's description, outside `/api/v1/` as in QFieldCloud: the OpenAPI document
(`/swagger.json`, `/swagger.yaml`), Swagger UI (`/swagger/`) and ReDoc (`/docs/`). The pages and
their scripts are served from `chalicelib/http/apidocs/` (the browser files vendored from npm by
scripts/vendor_api_docs.sh), so a deployment without internet access shows them too."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from chalice import Response

from chalicelib.config import settings
from chalicelib.errors import ObjectNotFound
from chalicelib.http.routing import Router

router = Router(__name__)
PAGES = Path(__file__).resolve().parent.parent / "apidocs"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "application/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}
# What each page may load beside itself: the vendored bundles and our own scripts.
ASSETS = {
    "swagger": ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-init.js"),
    "docs": ("redoc.standalone.js",),
}
ONE_DAY = "public, max-age=86400"


@functools.cache
def _read(name: str) -> str:
    own = PAGES / name
    path = own if own.is_file() else PAGES / "static" / name
    return path.read_text(encoding="utf-8")


def _file(name: str, cache_control: str = "no-cache") -> Response:
    headers = {"Content-Type": CONTENT_TYPES[Path(name).suffix], "Cache-Control": cache_control}
    return Response(body=_read(name), status_code=200, headers=headers)


def _server_root(request) -> str:
    """The URL before `/api/v1`: the configured public URL, else API Gateway's stage path (the
    request's full path less the path the routes see), so "Try it out" reaches this server."""
    if settings.public_url:
        return settings.public_url
    full_path = (request.context or {}).get("path") or ""
    route_path = request.to_original_event().get("path") or ""
    return full_path[: len(full_path) - len(route_path)] if full_path.endswith(route_path) else ""


def _document() -> dict:
    # Imported on the document's first request: its machinery (pydantic's JSON Schema) is no
    # part of the function's cold start.
    from chalicelib.http import openapi

    return openapi.for_server(router.blueprint.current_app, _server_root(router.request))


# The document is anyone's; a token sent along is checked, as on every API route.
@router.route("/swagger.json", auth="optional")
def document_json(caller):
    return Response(body=json.dumps(_document()), status_code=200,
                    headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})


@router.route("/swagger.yaml", auth="optional")
def document_yaml(caller):
    import yaml  # only for this document

    text = yaml.safe_dump(_document(), sort_keys=False, allow_unicode=True)
    return Response(body=text, status_code=200,
                    headers={"Content-Type": "application/yaml; charset=utf-8", "Cache-Control": "no-cache"})


def _page(section: str, name: str) -> Response:
    path = router.request.to_original_event().get("path") or ""
    if not path.endswith("/"):  # the page's relative links need the slash
        return Response(body="", status_code=302, headers={"Location": f"{section}/"})
    return _file(name)


@router.route("/swagger/", auth="none")
def swagger_ui():
    return _page("swagger", "swagger.html")


@router.route("/docs/", auth="none")
def redoc():
    return _page("docs", "redoc.html")


def _asset(section: str, asset: str) -> Response:
    if asset not in ASSETS[section]:
        raise ObjectNotFound()
    return _file(asset, ONE_DAY)


@router.route("/swagger/{asset}", auth="none")
def swagger_asset(asset):
    return _asset("swagger", asset)


@router.route("/docs/{asset}", auth="none")
def redoc_asset(asset):
    return _asset("docs", asset)
