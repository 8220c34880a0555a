"""What `./dev deploy` does differently when its AWS is moto's server (`--endpoint-url`), and why.

moto's CloudFormation engine creates most of the stack from the very template AWS gets, but two
of its gaps (moto 5.2.5) would fail the deployment or lose its outputs:

- It has no CloudFront, and an output naming the distribution fails the whole stack. Against
  moto the outputs name API Gateway's URL instead (what a moto deployment serves: no edge, no
  large-request path), and the CloudFront resources, which it would skip, are left out with
  what names them (`without_cloudfront`); tests/test_edge_infra.py checks them on the template.

- It creates an `AWS::ApiGateway::RestApi` without importing its `Body` (the OpenAPI definition
  of the routes), so the `AWS::ApiGateway::Deployment` then fails: "The REST API doesn't contain
  any methods". Here the body is imported the way API Gateway imports it, as CloudFormation
  resources moto does create: one `AWS::ApiGateway::Resource` per path segment and one
  `AWS::ApiGateway::Method` (the same Lambda proxy integration) per route and method.
- Its ExecuteChangeSet applies a change set without computing the stack's outputs, which stay
  empty. Against moto the change set is therefore created, shown and confirmed as against AWS,
  then deleted, and the same template and parameters are applied with CreateStack/UpdateStack,
  which moto implements fully.

And some properties of resources it does create are ignored: a bucket gets its encryption but
not its versioning, lifecycle rules, CORS rules, public access block or object ownership, and a
table not its time to live. The app relies on versioning, so after each change against moto
those properties are set from the template through the services' own APIs, as CloudFormation
sets them (`apply_skipped_properties`).

Everything else (tables and their indexes, queues and redrive, roles, the function, the workers'
network and task definition) is the template AWS gets. What moto does not model at all (alarms,
scaling, the ACL, the bucket policy) it skips without failing; docs/deploy.md lists it and says
how it is checked.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import TYPE_CHECKING

import requests

from . import api, edge
from .api import REST_API
from .cfn import Json, get_att, ref, resource

if TYPE_CHECKING:
    from .target import Target

APIGATEWAY_DEPLOYMENT = "AWS::ApiGateway::Deployment"


def _names_distribution(value: object) -> bool:
    """Whether `value` refers to the distribution: Ref, GetAtt or Sub."""
    text = json.dumps(value)
    return f'"{edge.DISTRIBUTION}"' in text or f"${{{edge.DISTRIBUTION}" in text


def without_cloudfront(template: Json) -> Json:
    """`template` without what moto cannot hold of CloudFront, nor anything naming the
    distribution (the bucket policy's statement for the console, the domain's records and
    target), its URLs API Gateway's."""
    changed = copy.deepcopy(template)
    resources = changed["Resources"]
    for body in resources.values():
        if body["Type"] == "AWS::S3::BucketPolicy":
            statements = body["Properties"]["PolicyDocument"]["Statement"]
            statements[:] = [s for s in statements if not _names_distribution(s)]
    for logical_id in [name for name, body in resources.items()
                       if body["Type"].startswith("AWS::CloudFront::") or _names_distribution(body)]:
        resources.pop(logical_id)
    outputs = changed["Outputs"]
    for name, gateway in (("ServerUrl", api.server_root_url()), ("ApiUrl", api.api_url())):
        condition, domain, _ = outputs[name]["Value"]["Fn::If"]
        outputs[name]["Value"] = {"Fn::If": [condition, domain, gateway]}
    for name in [name for name, output in outputs.items() if _names_distribution(output)]:
        outputs.pop(name)
    return changed


def is_moto(endpoint_url: str | None) -> bool:
    """Whether the endpoint is moto's server (it answers its own API under /moto-api/)."""
    if not endpoint_url:
        return False
    try:
        answer = requests.get(endpoint_url.rstrip("/") + "/moto-api/config", timeout=10)
    except requests.RequestException:
        return False
    return answer.ok and answer.headers.get("Content-Type", "").startswith("application/json")


def _logical_id(kind: str, text: str) -> str:
    return f"Api{kind}{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _segments_resources(paths: list[str]) -> dict[str, tuple[str, str | None, str]]:
    """Every path prefix as (logical id, parent path or None for the root, last segment)."""
    found: dict[str, tuple[str, str | None, str]] = {}
    for path in paths:
        if path == "/":
            continue  # the REST API's root resource, which it has from the start
        segments = path.strip("/").split("/")
        for depth in range(1, len(segments) + 1):
            prefix = "/" + "/".join(segments[:depth])
            parent = "/" + "/".join(segments[:depth - 1]) if depth > 1 else None
            found.setdefault(prefix, (_logical_id("Resource", prefix), parent, segments[depth - 1]))
    return found


def rest_api_as_resources(template: Json) -> Json:
    """`template` with the REST API's body imported as Resource and Method resources (what moto's
    CloudFormation creates), and every API deployment depending on all the methods."""
    adapted = copy.deepcopy(template)
    resources = adapted["Resources"]
    body = resources[REST_API]["Properties"].pop("Body")
    paths = _segments_resources(list(body["paths"]))
    for logical_id, parent, segment in paths.values():
        parent_id = get_att(REST_API, "RootResourceId") if parent is None else ref(paths[parent][0])
        resources[logical_id] = resource(
            "AWS::ApiGateway::Resource",
            {"RestApiId": ref(REST_API), "ParentId": parent_id, "PathPart": segment},
        )
    methods = []
    for path, operations in body["paths"].items():
        for method, operation in operations.items():
            integration = operation["x-amazon-apigateway-integration"]
            logical_id = _logical_id("Method", f"{method} {path}")
            resources[logical_id] = resource(
                "AWS::ApiGateway::Method",
                {
                    "RestApiId": ref(REST_API),
                    "ResourceId": (get_att(REST_API, "RootResourceId") if path == "/"
                                   else ref(paths["/" + path.strip("/")][0])),
                    "HttpMethod": method.upper(),
                    "AuthorizationType": "NONE",
                    "Integration": {
                        "Type": integration["type"].upper(),
                        "IntegrationHttpMethod": integration["httpMethod"],
                        "Uri": integration["uri"],
                    },
                },
            )
            methods.append(logical_id)
    for body_of in resources.values():
        if body_of["Type"] == APIGATEWAY_DEPLOYMENT:
            body_of["DependsOn"] = sorted(methods)
    return adapted


def _lifecycle_rule(rule: Json) -> Json:
    """A lifecycle rule of the template in the S3 API's shape (infra/storage.py does the reverse)."""
    converted: Json = {"ID": rule["Id"], "Status": rule["Status"],
                       "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": rule["ExpirationInDays"]}
    for same in ("AbortIncompleteMultipartUpload", "NoncurrentVersionExpiration"):
        if same in rule:
            converted[same] = rule[same]
    return converted


def _cors_rule(rule: Json) -> Json:
    renamed = {"Id": "ID", "ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds"}
    return {renamed.get(name, name): value for name, value in rule.items()}


def _set_bucket_properties(s3, bucket: str, properties: Json) -> None:
    if "VersioningConfiguration" in properties:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=properties["VersioningConfiguration"])
    if "LifecycleConfiguration" in properties:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={
            "Rules": [_lifecycle_rule(rule) for rule in properties["LifecycleConfiguration"]["Rules"]]})
    if "CorsConfiguration" in properties:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={
            "CORSRules": [_cors_rule(rule) for rule in properties["CorsConfiguration"]["CorsRules"]]})
    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=properties[
            "PublicAccessBlockConfiguration"])
    if "OwnershipControls" in properties:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=properties["OwnershipControls"])


def apply_skipped_properties(target: Target, stack: str, template: Json) -> list[str]:
    """Sets what moto's CloudFormation left out of the stack's buckets and tables; what was set."""
    created = target.client("cloudformation").describe_stack_resources(StackName=stack)["StackResources"]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in created
                if r.get("LogicalResourceId") and r.get("PhysicalResourceId")}
    done = []
    for logical_id, body in template["Resources"].items():
        if logical_id not in physical:
            continue
        properties = body.get("Properties", {})
        if body["Type"] == "AWS::S3::Bucket":
            _set_bucket_properties(target.client("s3"), physical[logical_id], properties)
            done.append(f"{logical_id}: versioning, lifecycle, CORS, public access block, ownership")
        elif body["Type"] == "AWS::DynamoDB::Table" and "TimeToLiveSpecification" in properties:
            target.client("dynamodb").update_time_to_live(
                TableName=physical[logical_id], TimeToLiveSpecification=properties["TimeToLiveSpecification"])
            done.append(f"{logical_id}: time to live")
    return done
