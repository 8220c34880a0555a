"""The template's CloudFront distribution, its routing function and the large-request service
(infra/edge.py, infra/large_requests.py): what moto cannot create, checked on the template. The
CloudFront Function itself runs in Node.js against the same cases as the local edge's rule."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chalicelib.http import limits
from chalicelib.http.client_address import EDGE_SECRET_HEADER, VIEWER_ADDRESS_HEADER
from infra import edge, large_requests
from infra.cfn import Json
from infra.template import build_template

VIEWER = "2001:db8::7"
NODE_RUNNER = """\
import { handler } from './function.mjs';
import cf from 'cloudfront';
const [cases, viewer, viewerHeader] = [JSON.parse(process.argv[2]), process.argv[3], process.argv[4]];
const routed = cases.map(([method, uri, length, chunked]) => {
    cf.selected = 'api';
    const headers = { [viewerHeader]: { value: '198.51.100.66' } };  // what a viewer claims
    if (length !== null) headers['content-length'] = { value: length };
    if (chunked) headers['transfer-encoding'] = { value: 'chunked' };
    const request = handler({ viewer: { ip: viewer },
                              request: { method, uri, headers, querystring: {}, cookies: {} } });
    return [cf.selected, request.headers[viewerHeader].value];
});
console.log(JSON.stringify(routed));
"""
CLOUDFRONT_STUB = "export default { selected: 'api', selectRequestOriginById(id) { this.selected = id; } };\n"

BIG, SMALL = str(limits.LARGE_BODY_BYTES + 1), str(limits.LARGE_BODY_BYTES)
CASES = [
    ("POST", "/api/v1/files/p1/DCIM/photo.jpg/", BIG, False),
    ("POST", "/api/v1/files/p1/DCIM/photo.jpg/", SMALL, False),
    ("POST", "/api/v1/files/p1/data.gpkg/", None, True),
    ("POST", "/api/v1/files/p1/data.gpkg/", None, False),
    ("POST", "/api/v1/files/p1/data.gpkg/", "12x", False),
    ("PUT", "/api/v1/files/p1/data.gpkg/", BIG, False),
    ("POST", "/api/v1/files/metadata/p1/", BIG, False),
    ("POST", "/api/v1/files/thumbnails/p1/", BIG, False),
    ("POST", "/api/v1/deltas/p1/", BIG, False),
    ("POST", "/api/v1/files/p1/", BIG, False),
    ("GET", "/api/v1/files/p1/a.gpkg/", None, True),
]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from app import app

    return build_template(app)


def _run_function(code: str, folder: Path) -> list[tuple[str, str]]:
    """The CloudFront Function run in Node.js on CASES: the origin it chose for each, and the
    viewer address it left in the request."""
    (folder / "function.mjs").write_text(code + "\nexport { handler };\n")
    stub = folder / "node_modules" / "cloudfront"
    stub.mkdir(parents=True)
    package = {"name": "cloudfront", "type": "module", "main": "index.js"}
    (stub / "package.json").write_text(json.dumps(package))
    (stub / "index.js").write_text(CLOUDFRONT_STUB)
    (folder / "run.mjs").write_text(NODE_RUNNER)
    arguments = [json.dumps(CASES), VIEWER, VIEWER_ADDRESS_HEADER.lower()]
    ran = subprocess.run(["node", "run.mjs", *arguments], cwd=folder, capture_output=True, text=True,
                         timeout=30, check=True)
    return [tuple(result) for result in json.loads(ran.stdout)]


def test_the_cloudfront_function_routes_as_the_local_edge_does(tmp_path: Path) -> None:
    routed = [origin for origin, _ in _run_function(edge.routing_function_code(), tmp_path)]
    expected = [edge.LARGE_REQUESTS_ORIGIN_ID if limits.takes_large_path(method, path, length, chunked)
                else edge.API_ORIGIN_ID for method, path, length, chunked in CASES]
    assert routed == expected
    assert routed[:3] == ["large-requests", "api", "large-requests"]  # the rule is not vacuous


@pytest.mark.parametrize("route_large_uploads", [True, False])
def test_the_cloudfront_function_reports_the_viewers_own_address(tmp_path: Path,
                                                                 route_large_uploads: bool) -> None:
    """On every request, with or without the large-request service, whatever the viewer claimed."""
    results = _run_function(edge.routing_function_code(route_large_uploads), tmp_path)
    assert [address for _, address in results] == [VIEWER] * len(CASES)
    if not route_large_uploads:
        assert {origin for origin, _ in results} == {edge.API_ORIGIN_ID}


def test_the_distribution_is_the_one_public_url_with_nothing_cached(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    config = resources[edge.DISTRIBUTION]["Properties"]["DistributionConfig"]
    # the API's behaviour, on its paths (the console is the default: tests/test_console_hosting.py)
    [default] = [behaviour for behaviour in config["CacheBehaviors"] if behaviour["PathPattern"] == "/api/*"]
    assert default["TargetOriginId"] == edge.API_ORIGIN_ID
    assert default["CachePolicyId"] == edge.CACHING_DISABLED
    assert default["OriginRequestPolicyId"] == edge.ALL_VIEWER_EXCEPT_HOST_HEADER
    assert set(default["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"}
    assert default["ViewerProtocolPolicy"] == "https-only"
    assert default["FunctionAssociations"] == [
        {"EventType": "viewer-request", "FunctionARN": {"Fn::GetAtt": [edge.EDGE_FUNCTION, "FunctionARN"]}}]
    api, large, _console = config["Origins"]
    assert api["OriginPath"] == "/api" and "${RestApi}.execute-api" in api["DomainName"]["Fn::Sub"]
    condition, origin, _ = large["Fn::If"]
    assert condition == "DeployJobWorkers" and origin["Id"] == edge.LARGE_REQUESTS_ORIGIN_ID
    assert origin["VpcOriginConfig"]["VpcOriginId"] == {"Fn::GetAtt": [edge.VPC_ORIGIN, "Id"]}
    function = resources[edge.EDGE_FUNCTION]["Properties"]
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert function["FunctionCode"]["Fn::If"][1:] == [edge.routing_function_code(),
                                                       edge.routing_function_code(route_large_uploads=False)]
    assert str(limits.LARGE_BODY_BYTES) in function["FunctionCode"]["Fn::If"][1]
    assert template["Outputs"]["ServerUrl"]["Value"]["Fn::If"][2] == {"Fn::Sub": "https://${Distribution.DomainName}"}


def test_only_cloudfront_can_tell_the_api_the_viewers_address(template: dict[str, Any]) -> None:
    """The API believes the viewer's address only with the stack's edge secret, which CloudFront
    adds to what it sends to API Gateway, and which the API function alone is given."""
    resources = template["Resources"]
    config = resources[edge.DISTRIBUTION]["Properties"]["DistributionConfig"]
    api_origin, large, console = config["Origins"]
    assert api_origin["OriginCustomHeaders"] == {"Fn::If": [
        "HasEdgeSecret", [{"HeaderName": EDGE_SECRET_HEADER, "HeaderValue": {"Ref": "EdgeSecret"}}],
        {"Ref": "AWS::NoValue"}]}
    assert "OriginCustomHeaders" not in large["Fn::If"][1] and "OriginCustomHeaders" not in console
    # Every behaviour to the API runs the function that writes the viewer's address, and passes
    # the viewer's headers on (the function's among them) but never the viewer's Host.
    to_api = [b for b in [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]
              if b["TargetOriginId"] == edge.API_ORIGIN_ID]
    assert len(to_api) == 3
    function = {"Fn::GetAtt": [edge.EDGE_FUNCTION, "FunctionARN"]}
    for behaviour in to_api:
        assert behaviour["OriginRequestPolicyId"] == edge.ALL_VIEWER_EXCEPT_HOST_HEADER
        assert behaviour["FunctionAssociations"] == [{"EventType": "viewer-request", "FunctionARN": function}]
    environment = resources["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["QFC_EDGE_SECRET"] == {"Ref": "EdgeSecret"}
    for name, body in resources.items():
        if name != "ApiFunction":
            assert "QFC_EDGE_SECRET" not in json.dumps(body), name


def test_the_edge_secret_is_a_masked_parameter_a_deployment_need_not_give(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["EdgeSecret"]
    assert parameter["NoEcho"] is True
    assert parameter["Default"] == ""  # then nothing is believed: the lockout counts per CloudFront server
    assert template["Conditions"]["HasEdgeSecret"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "EdgeSecret"}, ""]}]}
    pattern = parameter["AllowedPattern"]
    assert re.fullmatch(pattern, secrets.token_urlsafe(32)) and re.fullmatch(pattern, "")
    assert not [value for value in ("short", "****", "a" * 31, "a b" * 20, "x" * 40 + "\n")
                if re.fullmatch(pattern, value)]


def test_another_origin_and_behaviour_plug_into_the_distribution() -> None:
    """The console's S3 origin goes in through `distribution_parts`."""
    parts = edge.distribution_parts()
    parts.origins.append({"Id": "console", "DomainName": "bucket.s3.amazonaws.com", "S3OriginConfig": {}})
    parts.behaviours.append({"PathPattern": "/console/*", "TargetOriginId": "console"})
    config = edge.distribution_resources(parts)[edge.DISTRIBUTION]["Properties"]["DistributionConfig"]
    assert [origin.get("Id") for origin in config["Origins"][::2]] == ["api", "console"]
    assert config["CacheBehaviors"] == [{"PathPattern": "/console/*", "TargetOriginId": "console"}]
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == "api"


def test_only_cloudfront_reaches_the_service(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    balancer = resources[large_requests.LOAD_BALANCER]["Properties"]
    assert balancer["Scheme"] == "internal"
    origin = resources[edge.VPC_ORIGIN]["Properties"]["VpcOriginEndpointConfig"]
    assert origin["Arn"] == {"Fn::GetAtt": [large_requests.LOAD_BALANCER, "LoadBalancerArn"]}
    (balancer_rule,) = resources[large_requests.BALANCER_SECURITY_GROUP]["Properties"]["SecurityGroupIngress"]
    assert balancer_rule["CidrIp"] == str(large_requests.VPC_CIDR) and balancer_rule["FromPort"] == 80
    (task_rule,) = resources[large_requests.TASK_SECURITY_GROUP]["Properties"]["SecurityGroupIngress"]
    assert task_rule["SourceSecurityGroupId"] == {
        "Fn::GetAtt": [large_requests.BALANCER_SECURITY_GROUP, "GroupId"]}
    container = resources[large_requests.TASK_DEFINITION]["Properties"]["ContainerDefinitions"][0]
    assert container["Command"] == ["python3", "-m", "large_requests"]
    target = resources[large_requests.TARGET_GROUP]["Properties"]
    assert target["HealthCheckPath"] == "/health"
    assert target["Port"] == container["PortMappings"][0]["ContainerPort"]


def _statements(role: Json) -> list[Json]:
    (policy,) = role["Properties"]["Policies"]
    return policy["PolicyDocument"]["Statement"]


def test_the_service_role_reaches_only_what_an_upload_needs(template: dict[str, Any]) -> None:
    statements = {s["Sid"]: s for s in _statements(template["Resources"][large_requests.TASK_ROLE])}
    assert set(statements) == {"Tables", "StoreProjectFiles", "SubmitProcessingJobs"}
    actions = [action for s in statements.values() for action in s["Action"]]
    assert not [a for a in actions if a.endswith(("Scan", "*", "DeleteItem", "DeleteObject", "GetObject"))]
    tables = {arn["Fn::GetAtt"][0] for arn in statements["Tables"]["Resource"] if "Fn::GetAtt" in arn}
    assert "LoginAttemptsTable" not in tables and "DeltasTable" not in tables
    assert len(tables) == len(large_requests.MODELS)
    files = [{"Fn::Sub": "${FilesBucket.Arn}/projects/*/files/*"}]
    assert statements["StoreProjectFiles"]["Resource"] == files
    assert statements["SubmitProcessingJobs"]["Action"] == ["sqs:SendMessage"]
    assert "*" not in json.dumps([s["Resource"] for s in statements.values()]).replace("/*", "")


def test_the_at_rest_choice_is_a_stack_parameter(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["LargeRequestsAtRest"]
    assert parameter["Default"] == "always-on"
    assert parameter["AllowedValues"] == ["always-on", "scale-to-zero"]
    resources = template["Resources"]
    service = resources[large_requests.SERVICE]["Properties"]
    assert service["DesiredCount"] == {"Fn::If": [large_requests.SCALES_TO_ZERO, 0, 1]}
    wake_up = resources[large_requests.WAKE_UP_ALARM]
    assert wake_up["Condition"] == large_requests.SCALES_TO_ZERO
    assert wake_up["Properties"]["MetricName"] == "HTTPCode_ELB_503_Count"
    target = resources[large_requests.SCALABLE_TARGET]["Properties"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 1)


def test_incomplete_multipart_uploads_are_aborted_by_the_bucket(template: dict[str, Any]) -> None:
    rules = template["Resources"]["FilesBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    aborting = [rule for rule in rules if "AbortIncompleteMultipartUpload" in rule]
    assert aborting and aborting[0]["Status"] == "Enabled" and "Prefix" not in aborting[0]
    assert aborting[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] <= 7


# --- The operator's domain, on the distribution (infra/domain.py) ------------------------------

CLOUDFRONT_ZONE = "Z2FDTNDATAQYW2"  # Route 53's hosted zone of every CloudFront distribution
US_EAST_1_CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
EU_CERTIFICATE = US_EAST_1_CERTIFICATE.replace("us-east-1", "eu-central-1")


def _branches(value: Json) -> tuple[str, Any, Any]:
    condition, when_true, when_false = value["Fn::If"]
    return condition, when_true, when_false


def test_the_domain_names_the_distribution_with_its_certificate(template: dict[str, Any]) -> None:
    config = template["Resources"][edge.DISTRIBUTION]["Properties"]["DistributionConfig"]
    assert _branches(config["Aliases"]) == ("HasDomainName", [{"Ref": "DomainName"}], {"Ref": "AWS::NoValue"})
    condition, with_domain, without = _branches(config["ViewerCertificate"])
    assert condition == "HasDomainName"
    assert without == {"CloudFrontDefaultCertificate": True}
    assert with_domain["SslSupportMethod"] == "sni-only"
    assert with_domain["MinimumProtocolVersion"] == "TLSv1.2_2021"
    # the operator's certificate, else the one a stack in us-east-1 requests
    certificate_id = with_domain["AcmCertificateArn"]["Fn::If"][2]["Ref"]
    assert with_domain["AcmCertificateArn"] == {
        "Fn::If": ["HasCertificateArn", {"Ref": "CertificateArn"}, {"Ref": certificate_id}]}
    certificate = template["Resources"][certificate_id]
    assert certificate["Type"] == "AWS::CertificateManager::Certificate"
    assert certificate["Properties"]["ValidationMethod"] == "DNS"
    assert template["Conditions"][certificate["Condition"]] == {
        "Fn::And": [{"Condition": "HasDomainName"}, {"Fn::Not": [{"Condition": "HasCertificateArn"}]}]}
    # API Gateway keeps no domain of its own: it is the distribution's origin by its execute-api name,
    # asked without the viewer's Host (a foreign Host would not reach the API).
    assert not [body for body in template["Resources"].values()
                if body["Type"] in ("AWS::ApiGateway::DomainName", "AWS::ApiGateway::BasePathMapping")]
    api_behaviour = next(b for b in config["CacheBehaviors"] if b["PathPattern"] == "/api/*")
    assert api_behaviour["OriginRequestPolicyId"] == edge.ALL_VIEWER_EXCEPT_HOST_HEADER
    assert {name for name, p in template["Parameters"].items() if "Default" not in p} == {
        "LambdaCodeS3Bucket", "LambdaCodeS3Key"}  # the domain stays optional


def test_the_domains_records_and_target_are_the_distribution(template: dict[str, Any]) -> None:
    records = [body for body in template["Resources"].values() if body["Type"] == "AWS::Route53::RecordSet"]
    assert sorted(record["Properties"]["Type"] for record in records) == ["A", "AAAA"]
    config = template["Resources"][edge.DISTRIBUTION]["Properties"]["DistributionConfig"]
    assert config["IPV6Enabled"] is True  # hence the AAAA record
    for record in records:
        assert record["Properties"]["Name"] == {"Ref": "DomainName"}
        assert record["Properties"]["HostedZoneId"] == {"Ref": "HostedZoneId"}
        assert record["Properties"]["AliasTarget"] == {
            "DNSName": {"Fn::GetAtt": [edge.DISTRIBUTION, "DomainName"]}, "HostedZoneId": CLOUDFRONT_ZONE}
        assert template["Conditions"][record["Condition"]] == {
            "Fn::And": [{"Condition": "HasDomainName"}, {"Condition": "HasHostedZone"}]}
    # The A record keeps the logical id it had on API Gateway: an update changes it in place.
    assert template["Resources"]["ApiDomainRecord"]["Properties"]["Type"] == "A"
    outputs = template["Outputs"]
    assert outputs["ApiDomainTarget"]["Value"] == {"Fn::GetAtt": [edge.DISTRIBUTION, "DomainName"]}
    assert outputs["ApiDomainTarget"]["Condition"] == "HasDomainName"
    assert outputs["ServerUrl"]["Value"]["Fn::If"][:2] == ["HasDomainName", {"Fn::Sub": "https://${DomainName}"}]


@pytest.mark.parametrize(("region", "domain", "certificate", "refused"), [
    ("eu-central-1", "", "", False),
    ("eu-central-1", "qfc.example.org", US_EAST_1_CERTIFICATE, False),
    ("us-east-1", "qfc.example.org", "", False),  # the stack requests the certificate itself
    ("us-east-1", "qfc.example.org", US_EAST_1_CERTIFICATE, False),
    ("eu-central-1", "qfc.example.org", "", True),  # nobody can request one in us-east-1
    ("eu-central-1", "qfc.example.org", EU_CERTIFICATE, True),  # CloudFront cannot use it
    ("us-east-1", "qfc.example.org", EU_CERTIFICATE, True),
])
def test_a_domain_without_a_certificate_cloudfront_can_use_is_refused_before_any_change(
        template: dict[str, Any], region: str, domain: str, certificate: str, refused: bool) -> None:
    from infra import cloudformation

    values = cloudformation.effective_parameters(
        template, {"DomainName": domain, "CertificateArn": certificate}, stack=None)
    reasons = cloudformation.refusals(template, values, region)

    assert bool(reasons) == refused, reasons
    if refused:
        assert "us-east-1" in " ".join(reasons)


def test_the_rule_is_the_templates_own(template: dict[str, Any]) -> None:
    """CloudFormation checks the rule before it changes anything; it reads as the test above says."""
    (rule,) = template["Rules"].values()
    assert rule["RuleCondition"] == {"Fn::And": [
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "DomainName"}, ""]}]},
        {"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]}
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    assert "CertificateArn" in assertion["AssertDescription"]
    certificate = template["Parameters"]["CertificateArn"]
    assert ":acm:us-east-1:" in certificate["AllowedPattern"]
    assert "us-east-1" in certificate["ConstraintDescription"]


@pytest.mark.parametrize(("region", "parameters"), [
    ("eu-central-1", ["DomainName=qfc.example.org", f"CertificateArn={US_EAST_1_CERTIFICATE}",
                      "HostedZoneId=Z0123456789ABCDEFGHIJ"]),
    ("us-east-1", ["DomainName=qfc.example.org", "HostedZoneId=Z0123456789ABCDEFGHIJ"]),
])
def test_the_template_with_a_domain_passes_cfn_lint(template: dict[str, Any], tmp_path: Path, region: str,
                                                     parameters: list[str]) -> None:
    from cfnlint.api import lint_file
    from cfnlint.config import ManualArgs

    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    code = ["LambdaCodeS3Bucket=code-bucket", "LambdaCodeS3Key=lambda/code.zip"]
    values = dict(pair.split("=", 1) for pair in code + parameters)

    matches = lint_file(path, config=ManualArgs(regions=[region], parameters=[values]))

    assert [str(match) for match in matches] == []


def test_against_moto_nothing_names_the_distribution(template: dict[str, Any]) -> None:
    from infra import standin

    local = standin.without_cloudfront(template)
    assert edge.DISTRIBUTION not in json.dumps(local["Resources"])
    assert edge.DISTRIBUTION not in json.dumps(local["Outputs"])
    assert "ApiDomainTarget" not in local["Outputs"] and "ServerUrl" in local["Outputs"]
