"""The web console's files as they are served: by the local stack (devstack/console_files.py) and on
AWS (infra/console.py: uploaded to the files bucket, served by CloudFront). The browser tests
(tests/e2e/test_console_browser.py) drive the console itself."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from devstack.console_files import DIST, with_console
from infra import console

REPO = Path(__file__).resolve().parent.parent
STORAGE = "http://127.0.0.1:9100"


@pytest.fixture(scope="module")
def dist() -> Path:
    """The console as `./dev` builds it (a moment when it is built already)."""
    subprocess.run([str(REPO / "scripts" / "build_console.sh")], check=True, stdin=subprocess.DEVNULL)
    return DIST


def serve(application, path: str, method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    answered = {}

    def start_response(status, headers):
        answered.update(status=status, headers=dict(headers))

    body = b"".join(application({"PATH_INFO": path, "REQUEST_METHOD": method, "wsgi.input": io.BytesIO()},
                                start_response))
    return answered["status"], answered["headers"], body


def the_api(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"code":"not_found","message":"api"}']


def test_the_page_and_its_assets_are_served_with_a_strict_policy(dist):
    application = with_console(the_api, STORAGE, dist)
    status, headers, page = serve(application, "/")
    assert status == "200 OK" and headers["Content-Type"] == "text/html; charset=utf-8"
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe" not in policy and "default-src 'none'" in policy
    assert f"connect-src 'self' {STORAGE}" in policy  # presigned upload parts go to S3
    assert headers["Cache-Control"] == "no-cache" and headers["X-Frame-Options"] == "DENY"
    # No inline script: every script is a file of ours, named relatively (any bucket prefix works).
    scripts = re.findall(rb"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts
    assert all(b'src="./assets/' in attributes and not body.strip() for attributes, body in scripts)
    for asset in re.findall(rb'(?:src|href)="\./(assets/[^"]+)"', page):
        status, headers, _ = serve(application, "/" + asset.decode())
        assert status == "200 OK" and "immutable" in headers["Cache-Control"], asset


def test_other_paths_and_methods_go_to_the_api_and_nothing_outside_the_build_is_served(dist):
    application = with_console(the_api, STORAGE, dist)
    for path, method in (("/api/v1/status/", "GET"), ("/", "POST"), ("/assets/../index.html", "GET"),
                         ("/assets/../../devstack/console_files.py", "GET"), ("/package.json", "GET"),
                         ("/assets/nothing.js", "GET")):
        status, _, body = serve(application, path, method)
        assert (status, json.loads(body)["message"]) == ("404 Not Found", "api"), path


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="eu-central-1")
        client.create_bucket(Bucket="files", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        client.put_bucket_versioning(Bucket="files", VersioningConfiguration={"Status": "Enabled"})
        yield client


def test_the_deploy_uploads_the_console_under_its_prefix_and_an_unchanged_one_adds_nothing(dist, s3):
    uploaded, total = console.upload_console(s3, "files", dist)
    built = [path for path in dist.rglob("*") if path.is_file() and not path.name.startswith(".")]
    assert uploaded == total == len(built)
    page = s3.get_object(Bucket="files", Key="console/index.html")
    assert (page["ContentType"], page["CacheControl"]) == ("text/html", "no-cache")
    assert page["Body"].read() == (dist / "index.html").read_bytes()
    [asset] = [key["Key"] for key in s3.list_objects_v2(Bucket="files", Prefix="console/assets/")["Contents"]
               if key["Key"].endswith(".css")]
    assert s3.head_object(Bucket="files", Key=asset)["CacheControl"] == console.ASSET_CACHE
    assert console.upload_console(s3, "files", dist) == (0, total)
    versions = s3.list_object_versions(Bucket="files", Prefix="console/")["Versions"]
    assert len(versions) == total


def test_the_deploy_refuses_to_upload_a_console_that_is_not_built(tmp_path, s3):
    with pytest.raises(FileNotFoundError, match="scripts/build_console.sh"):
        console.upload_console(s3, "files", tmp_path)


def test_the_distribution_serves_the_console_at_the_root_and_the_api_on_its_paths(tmp_path):
    """The template the deploy builds: cfn-lint finds nothing; `/` is the console from the bucket's
    console/ folder, every route of the app reaches API Gateway through the large-upload rule, and
    only the distribution may read console/* (the files stay private)."""
    import fnmatch

    from cfnlint.api import lint_file
    from cfnlint.config import ManualArgs

    import app
    from infra import edge, standin

    out = tmp_path / "template.json"
    subprocess.run([sys.executable, "-m", "infra.build", "--out", str(out)], cwd=REPO, check=True,
                   capture_output=True)
    matches = lint_file(out, config=ManualArgs(regions=["us-east-1", "eu-central-1"]))
    assert [str(match) for match in matches] == []
    template = json.loads(out.read_text())
    config = template["Resources"][edge.DISTRIBUTION]["Properties"]["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == console.ORIGIN_ID
    assert config["DefaultCacheBehavior"]["AllowedMethods"] == ["GET", "HEAD"]
    [bucket_origin] = [origin for origin in config["Origins"] if origin.get("Id") == console.ORIGIN_ID]
    assert bucket_origin["OriginPath"] == "/console"
    api_behaviours = {behaviour["PathPattern"]: behaviour for behaviour in config["CacheBehaviors"]}
    for behaviour in api_behaviours.values():
        assert behaviour["TargetOriginId"] == edge.API_ORIGIN_ID
        assert behaviour["FunctionAssociations"][0]["FunctionARN"] == {"Fn::GetAtt": [edge.EDGE_FUNCTION,
                                                                                      "FunctionARN"]}
    for route in app.app.routes:  # CloudFront's `*` matches any characters, slashes included
        path = route.replace("{", "").replace("}", "")
        assert any(fnmatch.fnmatchcase(path, pattern) for pattern in api_behaviours), route
    assert not any(fnmatch.fnmatchcase("/index.html", pattern) for pattern in api_behaviours)
    statements = template["Resources"]["FilesBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    [reader] = [statement for statement in statements if statement.get("Principal") != "*"]
    assert reader == console.bucket_policy_statement(edge.DISTRIBUTION)
    assert reader["Resource"]["Fn::Sub"].endswith("/console/*") and reader["Action"] == "s3:GetObject"
    # moto has no CloudFront: the stand-in's template keeps none of it, nor the statement naming it.
    local = standin.without_cloudfront(template)
    assert not [body for body in local["Resources"].values() if body["Type"].startswith("AWS::CloudFront::")]
    assert "Distribution" not in json.dumps(local["Resources"]["FilesBucketPolicy"])
