"""The OpenAPI document: generated from the routes and models, complete, valid, and served with
Swagger UI and ReDoc from vendored files (no CDN)."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from openapi_spec_validator import validate

from chalicelib import errors
from chalicelib.http import openapi
from chalicelib.http.routing import API_PREFIX, HTTP_METHODS

ROOT = "http://testserver/"
METHODS = {method.lower() for method in HTTP_METHODS}
DOC_PAGES = {"/swagger.json", "/swagger.yaml", "/swagger", "/swagger/{asset}", "/docs", "/docs/{asset}"}


@pytest.fixture
def document(api) -> dict:
    reply = api.as_anonymous().get(ROOT + "swagger.yaml")
    assert reply.status == 200, reply.content[:300]
    assert reply.headers["Content-Type"].startswith("application/yaml")
    return yaml.safe_load(reply.content)


def test_the_served_document_is_valid_openapi_3_1(api, document):
    validate(document)
    assert document["openapi"].startswith("3.1")
    as_json = api.as_anonymous().get(ROOT + "swagger.json")
    assert as_json.status == 200 and json.loads(as_json.content) == document


def test_every_route_is_documented_and_every_documented_operation_is_served(api, document):
    from app import app

    served = {
        (openapi.openapi_path(route), method.lower())
        for route, entries in app.routes.items() if route.startswith(API_PREFIX + "/")
        for method, entry in entries.items() if entry.view_name != "method_not_allowed"
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item
                  if method in METHODS}
    assert served - documented == set(), "routes missing from the document"
    assert documented - served == set(), "documented operations no route serves"
    # Every route outside the API is one of the documentation's own pages.
    assert {route for route in app.routes if not route.startswith(API_PREFIX + "/")} == DOC_PAGES


def test_every_documented_path_reaches_the_route_it_names(api, document):
    """The document's paths, with values in their parameters, are matched by the gateway to a
    route serving the method (no path is documented in a form that does not route)."""
    gateway = api.gateway
    values = {"project_id": "2f1b5d3e-9a41-4d8e-9d32-7b6f0e2c1a11", "filename": "DCIM/a b.jpg"}
    for path, item in document["paths"].items():
        concrete = re.sub(r"\{(\w+)\}", lambda match: values.get(match.group(1), match.group(1)), path)
        route, _ = gateway._match(API_PREFIX + concrete)
        assert openapi.openapi_path(route) == path
        for method in item:
            if method in METHODS:
                assert app_view(route, method).view_name != "method_not_allowed", (method, path)


def app_view(route: str, method: str):
    from app import app

    return app.routes[route][method.upper()]


def test_operations_say_what_they_take_and_answer(document):
    paths = document["paths"]
    create = paths["/projects/"]["post"]
    assert set(create["requestBody"]["content"]) >= {"application/json", "application/x-www-form-urlencoded"}
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ProjectOut"}
    assert create["security"] == [{"TokenAuth": []}]
    listing = paths["/projects/"]["get"]
    assert {"$ref": "#/components/parameters/limit"} in listing["parameters"]
    assert set(listing["responses"]["200"]["headers"]) == {"X-Total-Count", "X-Next-Page", "X-Previous-Page"}
    assert "ProjectOut" in json.dumps(listing["responses"]["200"]["content"])
    login = paths["/auth/login/"]["post"]
    assert {} in login["security"]
    assert "`too_many_failed_login_attempts`" in login["responses"]["401"]["description"]
    upload = paths["/files/{project_id}/{filename}/"]["post"]
    assert upload["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["file"] == {
        "type": "string", "format": "binary"}
    assert "`over_quota`" in upload["responses"]["402"]["description"]
    download = paths["/files/{project_id}/{filename}/"]["get"]
    assert set(download["responses"]) >= {"302", "304", "416"}
    scheme = document["components"]["securitySchemes"]["TokenAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")


def test_the_error_envelope_lists_every_code(document):
    schema = document["components"]["schemas"]["ErrorOut"]
    assert set(schema["required"]) == {"code", "message"}
    codes = set(schema["properties"]["code"]["enum"])
    assert {errors.OverQuota.code, errors.InvalidDeltafile.code, errors.UnknownRoute.code} <= codes
    assert codes == {cls.code for cls in _subclasses(errors.ApiError)}


def _subclasses(cls):
    yield cls
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)


def test_the_server_url_follows_the_public_url(api, override_settings):
    override_settings(public_url="https://qfc.example.org")
    document = api.as_anonymous().get(ROOT + "swagger.json").json()
    assert document["servers"] == [{"url": "https://qfc.example.org/api/v1"}]


def test_swagger_ui_and_redoc_pages_load_only_vendored_files(api):
    anonymous = api.as_anonymous()
    for page, wanted in (("swagger/", ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-init.js")),
                         ("docs/", ("redoc.standalone.js",))):
        reply = anonymous.get(ROOT + page)
        assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
        html = reply.content.decode()
        assert "http" not in html, "a page must not load anything from elsewhere"
        for asset in wanted:
            assert asset in html
            served = anonymous.get(ROOT + page + asset)
            assert served.status == 200 and len(served.content) > 100, asset
    assert anonymous.get(ROOT + "swagger").headers["Location"] == "swagger/"
    assert anonymous.get(ROOT + "swagger/../app.py").status == 404
    assert anonymous.get(ROOT + "docs/swagger-ui.css").status == 404
    init = anonymous.get(ROOT + "swagger/swagger-init.js").content.decode()
    assert "validatorUrl: null" in init and "../swagger.json" in init


def test_behind_api_gateway_the_server_url_keeps_the_stage(api, override_settings):
    """On AWS the request's full path has the stage (`/api/swagger.json`) that the route's path
    has not: "Try it out" must reach `/api/api/v1/...`."""
    from urllib.parse import urlsplit

    from devstack.gateway import _LambdaContext

    override_settings(public_url="")
    gateway = api.gateway
    event = gateway._event("GET", urlsplit("/swagger.json"), [("Host", "abc.example.org")], b"",
                           "/swagger.json", {}, "127.0.0.1")
    event["requestContext"]["path"] = "/api/swagger.json"
    result = gateway.handler(event, _LambdaContext())
    assert json.loads(result["body"])["servers"] == [{"url": "/api/api/v1"}]
