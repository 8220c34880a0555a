"""The AWS deployment (infra/): the generated CloudFormation template is valid and matches the app.

The template is generated once, through the same command a deployment uses, and checked offline:
cfn-lint for CloudFormation validity, and the expectations below, which are derived from the
models, the Chalice app and devstack independently of infra's own helpers.
"""

from __future__ import annotations

import importlib.util
import inspect
import ipaddress
import json
import marshal
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from pynamodb.attributes import Attribute, TTLAttribute
from pynamodb.indexes import GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.config import settings
from chalicelib.models import ALL_MODELS
from tests import shared_data
from tests.aws_authorization import dynamodb_authorizations
from tests.files_helpers import upload
from tests.jobs_helpers import run_jobs, upload_tree
from tests.test_deltas import DELTA_FILES, deltafile, push

REPO = Path(__file__).resolve().parent.parent
API_GATEWAY_RESOURCE_QUOTA = 300
CLOUDFORMATION_TEMPLATE_LIMIT = 1_000_000
# Our own budget (docs/routing.md): room under the quotas for the resources still to come.
API_GATEWAY_RESOURCE_BUDGET = 200
TEMPLATE_SIZE_BUDGET = 600_000
# Actions that AWS defines on no resource, so "*" is the only possible Resource.
RESOURCELESS_ACTIONS = {"ecr:GetAuthorizationToken"}
# Which resource type an action's service must be limited to.
RESOURCE_TYPE_OF_SERVICE = {
    "dynamodb": "AWS::DynamoDB::Table",
    "s3": "AWS::S3::Bucket",
    "sqs": "AWS::SQS::Queue",
    "logs": "AWS::Logs::LogGroup",
}
MESSAGE_STRING = "$context.error.messageString"
# Addresses no job worker may reach: private networks (RFC 1918), the shared address space
# (RFC 6598) and link-local addresses (RFC 3927), where instance and task metadata live.
PRIVATE_RANGES = [ipaddress.ip_network(cidr) for cidr in
                  ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")]
# What Docker and containerd grant a container by default (moby's oci/caps/defaults.go).
RUNTIME_DEFAULT_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}
# What the worker needs to run a job's QGIS process under a user id of its own, and no more.
WORKER_CAPABILITIES = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL"}


@pytest.fixture(scope="module")
def template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("infra") / "template.json"
    subprocess.run(
        [sys.executable, "-m", "infra.build", "--out", str(out)],
        cwd=REPO, check=True, capture_output=True, text=True,
    )
    return out


@pytest.fixture(scope="module")
def template(template_path: Path) -> dict[str, Any]:
    return json.loads(template_path.read_text(encoding="utf-8"))


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: body
        for logical_id, body in template["Resources"].items()
        if body["Type"] == resource_type
    }


def the_one(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    found = resources_of_type(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.values()))


def api_definition(template: dict[str, Any]) -> dict[str, Any]:
    return the_one(template, "AWS::ApiGateway::RestApi")["Properties"]["Body"]


def the_function(template: dict[str, Any]) -> dict[str, Any]:
    return the_one(template, "AWS::Lambda::Function")["Properties"]


# --- CloudFormation validity ------------------------------------------------------------------


def test_template_passes_cfn_lint(template_path: Path) -> None:
    from cfnlint.api import lint_file
    from cfnlint.config import ManualArgs

    matches = lint_file(template_path, config=ManualArgs(regions=["us-east-1", "eu-central-1"]))

    assert [str(match) for match in matches] == []


def test_template_stays_within_its_size_budget(template_path: Path) -> None:
    size = template_path.stat().st_size
    print(f"template size: {size} bytes (budget {TEMPLATE_SIZE_BUDGET}, "
          f"CloudFormation limit {CLOUDFORMATION_TEMPLATE_LIMIT})")
    assert size <= TEMPLATE_SIZE_BUDGET < CLOUDFORMATION_TEMPLATE_LIMIT


# --- DynamoDB: one table per model, schema taken from the model -------------------------------


def key_schema(attributes: dict[str, Attribute]) -> list[dict[str, str]]:
    hash_keys = [a.attr_name for a in attributes.values() if a.is_hash_key]
    range_keys = [a.attr_name for a in attributes.values() if a.is_range_key]
    return [{"AttributeName": name, "KeyType": "HASH"} for name in hash_keys] + [
        {"AttributeName": name, "KeyType": "RANGE"} for name in range_keys
    ]


def key_attributes(attributes: dict[str, Attribute]) -> dict[str, str]:
    return {a.attr_name: a.attr_type for a in attributes.values() if a.is_hash_key or a.is_range_key}


def class_attributes(cls: type) -> dict[str, Attribute]:
    return dict(inspect.getmembers(cls, lambda value: isinstance(value, Attribute)))


def projection_of(index: GlobalSecondaryIndex) -> dict[str, Any]:
    projection = {"ProjectionType": index.Meta.projection.projection_type}
    if getattr(index.Meta.projection, "non_key_attributes", None):  # INCLUDE
        projection["NonKeyAttributes"] = index.Meta.projection.non_key_attributes
    return projection


def expected_indexes(model: type[Model]) -> dict[str, dict[str, Any]]:
    indexes = inspect.getmembers(model, lambda value: isinstance(value, GlobalSecondaryIndex))
    return {
        index.Meta.index_name: {
            "KeySchema": key_schema(class_attributes(type(index))),
            "Projection": projection_of(index),
            "attributes": key_attributes(class_attributes(type(index))),
        }
        for _, index in indexes
    }


def tables_by_name_suffix(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Tables keyed by the name they get after the prefix (`Fn::Join ["", [prefix, suffix]]`)."""
    tables = {}
    for logical_id, body in resources_of_type(template, "AWS::DynamoDB::Table").items():
        _, (prefix, suffix) = body["Properties"]["TableName"]["Fn::Join"]
        tables[suffix] = {**body, "prefix": prefix, "logical_id": logical_id}
    return tables


def test_there_is_one_table_per_model(template: dict[str, Any]) -> None:
    expected = {model.Meta.table_name.removeprefix(settings.table_prefix) for model in ALL_MODELS}
    assert set(tables_by_name_suffix(template)) == expected


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda model: model.__name__)
def test_table_matches_its_model(template: dict[str, Any], model: type[Model]) -> None:
    suffix = model.Meta.table_name.removeprefix(settings.table_prefix)
    table = tables_by_name_suffix(template)[suffix]
    properties = table["Properties"]
    model_attributes = model.get_attributes()
    indexes = expected_indexes(model)

    assert properties["KeySchema"] == key_schema(model_attributes)
    assert {
        index["IndexName"]: {"KeySchema": index["KeySchema"], "Projection": index["Projection"]}
        for index in properties.get("GlobalSecondaryIndexes", [])
    } == {
        name: {"KeySchema": index["KeySchema"], "Projection": index["Projection"]}
        for name, index in indexes.items()
    }
    defined = {d["AttributeName"]: d["AttributeType"] for d in properties["AttributeDefinitions"]}
    assert len(defined) == len(properties["AttributeDefinitions"])
    expected_defined = key_attributes(model_attributes)
    for index in indexes.values():
        expected_defined.update(index["attributes"])
    assert defined == expected_defined
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    ttl = [a.attr_name for a in model_attributes.values() if isinstance(a, TTLAttribute)]
    if ttl:
        assert properties.get("TimeToLiveSpecification") == {"AttributeName": ttl[0], "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in properties
    assert table["DeletionPolicy"] == "Retain"
    # The Lambda function is told exactly the prefix the tables were named with.
    assert table["prefix"] == the_function(template)["Environment"]["Variables"]["QFC_TABLE_PREFIX"]


# --- API Gateway and the Lambda function ------------------------------------------------------


def test_api_has_every_route_and_method_of_the_app(template: dict[str, Any]) -> None:
    from app import app

    paths = api_definition(template)["paths"]

    assert set(paths) == set(app.routes)
    for path, entries in app.routes.items():
        assert set(paths[path]) == {method.lower() for method in entries}, path
        for operation in paths[path].values():
            integration = operation["x-amazon-apigateway-integration"]
            assert integration["type"] == "aws_proxy"
            assert integration["httpMethod"] == "POST"
            assert "${ApiFunction.Arn}" in integration["uri"]["Fn::Sub"]


def test_every_media_type_is_binary(template: dict[str, Any]) -> None:
    """Uploads reach the function as bytes, and a compressed JSON answer reaches any client as
    bytes whatever its Accept (chalicelib/http/compression.py)."""
    assert api_definition(template)["x-amazon-apigateway-binary-media-types"] == ["*/*"]


def api_gateway_resources(paths: list[str]) -> set[str]:
    resources = {"/"}
    for path in paths:
        parts = [part for part in path.split("/") if part]
        resources.update("/" + "/".join(parts[:end]) for end in range(1, len(parts) + 1))
    return resources


def test_api_gateway_resources_stay_within_the_budget(
    template: dict[str, Any], record_property: Any
) -> None:
    count = len(api_gateway_resources(list(api_definition(template)["paths"])))
    record_property("api_gateway_resources", count)
    print(f"API Gateway resources: {count} (budget {API_GATEWAY_RESOURCE_BUDGET}, "
          f"quota {API_GATEWAY_RESOURCE_QUOTA})")
    assert count <= API_GATEWAY_RESOURCE_BUDGET < API_GATEWAY_RESOURCE_QUOTA


def test_file_routes_are_one_greedy_resource_with_a_declared_parameter(template: dict[str, Any]) -> None:
    paths = api_definition(template)["paths"]
    greedy = {path: operations for path, operations in paths.items() if "+}" in path}
    assert "/api/v1/files/{project_id}/{filename+}" in greedy
    for path, operations in greedy.items():
        assert path.endswith("/{filename+}"), path  # greedy only as the last segment
        for method, operation in operations.items():
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert "filename" in names, (path, method)


def test_no_resource_has_two_differently_named_path_parameters(template: dict[str, Any]) -> None:
    """API Gateway refuses `/x/{a}` beside `/x/{b}`: siblings must share one parameter name."""
    parameters_under: dict[str, set[str]] = {}
    for resource in api_gateway_resources(list(api_definition(template)["paths"])):
        parent, _, last = resource.rpartition("/")
        if last.startswith("{"):
            parameters_under.setdefault(parent, set()).add(last)
    assert {parent: names for parent, names in parameters_under.items() if len(names) > 1} == {}


def gateway_response_body(response: dict[str, Any]) -> dict[str, Any]:
    template = response["responseTemplates"]["application/json"]
    return json.loads(template.replace(MESSAGE_STRING, json.dumps("API Gateway's message")))


def test_gateway_responses_answer_in_the_api_error_format(template: dict[str, Any]) -> None:
    responses = api_definition(template)["x-amazon-apigateway-gateway-responses"]

    unknown_route = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert unknown_route["statusCode"] == "404"
    assert gateway_response_body(unknown_route) == {
        "code": "object_not_found", "message": "Unknown API route."
    }
    too_large = responses["REQUEST_TOO_LARGE"]
    assert too_large["statusCode"] == "413"
    assert gateway_response_body(too_large)["code"] == "payload_too_large"
    assert "files/<project>/<path>/" in gateway_response_body(too_large)["message"]
    assert gateway_response_body(responses["DEFAULT_4XX"])["code"] == "api_error"
    assert gateway_response_body(responses["DEFAULT_5XX"])["code"] == "unknown_error"
    assert MESSAGE_STRING in responses["DEFAULT_4XX"]["responseTemplates"]["application/json"]


def test_lambda_function_runs_the_chalice_app(template: dict[str, Any]) -> None:
    function = the_function(template)
    variables = function["Environment"]["Variables"]

    assert function["Runtime"] == "python3.11"
    assert function["Handler"] == "app.handler"
    assert function["Code"] == {
        "S3Bucket": {"Ref": "LambdaCodeS3Bucket"}, "S3Key": {"Ref": "LambdaCodeS3Key"}
    }
    assert variables["QFC_MAX_DIRECT_UPLOAD_BYTES"] == "4400000"
    assert variables["POWERTOOLS_SERVICE_NAME"] == "qfc-api"
    assert variables["QFC_BUCKET"] == {"Ref": "FilesBucket"}
    assert variables["QFC_JOBS_QUEUE_URL"] == {"Ref": "JobsQueue"}
    assert "QFC_AWS_ENDPOINT_URL" not in variables


def test_api_gateway_may_invoke_the_function(template: dict[str, Any]) -> None:
    permission = the_one(template, "AWS::Lambda::Permission")["Properties"]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert "${RestApi}" in permission["SourceArn"]["Fn::Sub"]


def test_stage_is_api_and_outputs_name_the_urls(template: dict[str, Any]) -> None:
    stage = the_one(template, "AWS::ApiGateway::Stage")["Properties"]
    outputs = template["Outputs"]

    assert stage["StageName"] == "api"
    assert stage["DeploymentId"]["Ref"] in template["Resources"]
    # The operator's domain when there is one (the distribution's alias), else CloudFront's name.
    edge = "https://${Distribution.DomainName}"
    assert outputs["ApiUrl"]["Value"] == {"Fn::If": [
        "HasDomainName", {"Fn::Sub": "https://${DomainName}/api/v1/"}, {"Fn::Sub": edge + "/api/v1/"}]}
    assert outputs["ServerUrl"]["Value"] == {"Fn::If": [
        "HasDomainName", {"Fn::Sub": "https://${DomainName}"}, {"Fn::Sub": edge}]}
    assert not resources_of_type(template, "AWS::ApiGateway::BasePathMapping")  # the domain is CloudFront's
    assert outputs["BucketName"]["Value"] == {"Ref": "FilesBucket"}
    assert outputs["JobsQueueUrl"]["Value"] == {"Ref": "JobsQueue"}


# --- Bucket and queues: what devstack creates locally, in AWS ---------------------------------


def as_cloudformation_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """An S3 API lifecycle rule (as devstack applies it) in CloudFormation's shape."""
    converted: dict[str, Any] = {"Id": rule["ID"], "Status": rule["Status"]}
    prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix", ""))
    if prefix:
        converted["Prefix"] = prefix
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    if "Expiration" in rule:
        converted["ExpirationInDays"] = rule["Expiration"]["Days"]
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        }
    return converted


def test_bucket_lifecycle_equals_the_local_stack(template: dict[str, Any], aws: None) -> None:
    from chalicelib.adapters import aws as clients

    local = clients.s3().get_bucket_lifecycle_configuration(Bucket=settings.bucket)["Rules"]
    deployed = the_one(template, "AWS::S3::Bucket")["Properties"]["LifecycleConfiguration"]["Rules"]

    assert sorted(deployed, key=lambda r: r["Id"]) == sorted(
        (as_cloudformation_rule(rule) for rule in local), key=lambda r: r["Id"]
    )


def test_bucket_is_versioned_private_encrypted_and_allows_presigned_transfers(
    template: dict[str, Any],
) -> None:
    bucket = the_one(template, "AWS::S3::Bucket")
    properties = bucket["Properties"]
    (cors,) = properties["CorsConfiguration"]["CorsRules"]

    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert set(cors["AllowedMethods"]) == {"GET", "PUT"}
    assert cors["AllowedOrigins"] == ["*"]
    assert "ETag" in cors["ExposedHeaders"]
    assert bucket["DeletionPolicy"] == "Retain"


def test_the_bucket_refuses_every_request_that_is_not_over_tls(template: dict[str, Any]) -> None:
    """moto's CloudFormation does not model bucket policies: this is where the policy is checked."""
    (bucket_id,) = resources_of_type(template, "AWS::S3::Bucket")
    (policy,) = resources_of_type(template, "AWS::S3::BucketPolicy").values()
    # the other statement lets CloudFront read the console's files (tests/test_console_hosting.py)
    statement, _console_reader = policy["Properties"]["PolicyDocument"]["Statement"]

    assert policy["Properties"]["Bucket"] == {"Ref": bucket_id}
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "s3:*")
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [{"Fn::GetAtt": [bucket_id, "Arn"]},
                                     {"Fn::Sub": f"${{{bucket_id}.Arn}}/*"}]


def test_jobs_queue_has_a_dead_letter_queue_like_the_local_stack(
    template: dict[str, Any], aws: None
) -> None:
    from chalicelib.adapters import aws as clients
    from chalicelib.adapters.job_queue import JOBS_QUEUE_NAME

    sqs = clients.sqs()
    local = sqs.get_queue_attributes(
        QueueUrl=sqs.get_queue_url(QueueName=JOBS_QUEUE_NAME)["QueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    queues = resources_of_type(template, "AWS::SQS::Queue")
    jobs = queues["JobsQueue"]["Properties"]

    assert jobs["QueueName"] == {"Fn::Sub": "${AWS::StackName}-jobs"}
    assert jobs["VisibilityTimeout"] == int(local["VisibilityTimeout"]) == 900
    assert jobs["RedrivePolicy"]["maxReceiveCount"] == int(
        json.loads(local["RedrivePolicy"])["maxReceiveCount"]
    ) == 3
    assert jobs["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]
    }
    assert "JobsDeadLetterQueue" in queues


# --- Job workers on ECS -----------------------------------------------------------------------


def test_job_workers_run_on_fargate_and_scale_to_zero(template: dict[str, Any]) -> None:
    task = template["Resources"]["JobTaskDefinition"]["Properties"]
    (container,) = task["ContainerDefinitions"]
    service = template["Resources"]["JobService"]["Properties"]
    target = template["Resources"]["JobScalableTarget"]["Properties"]
    environment = {variable["Name"]: variable["Value"] for variable in container["Environment"]}

    assert template["Resources"]["JobCluster"]
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    assert (task["Cpu"], task["Memory"]) == ("1024", "4096")
    assert container["Image"] == {"Ref": "JobImageUri"}
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert environment["QFC_BUCKET"] == {"Ref": "FilesBucket"}
    assert environment["QFC_JOBS_QUEUE_URL"] == {"Ref": "JobsQueue"}
    assert environment["QFC_JOBS_DLQ_URL"] == {"Ref": "JobsDeadLetterQueue"}
    api_environment = the_function(template)["Environment"]["Variables"]
    # No X-Ray tracing is configured, so neither loads the tracer (a part of a cold start).
    assert "TracingConfig" not in the_function(template)
    assert api_environment["POWERTOOLS_TRACE_DISABLED"] == environment["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert (api_environment["POWERTOOLS_SERVICE_NAME"], environment["POWERTOOLS_SERVICE_NAME"]) == (
        "qfc-api", "qfc-worker")
    # The API's own settings: direct uploads, account self-service (mails, sign-up), and the edge
    # secret that makes it believe the viewer's address CloudFront reports (only the API needs it).
    shared = set(api_environment) - {"QFC_MAX_DIRECT_UPLOAD_BYTES", "QFC_MAIL_SENDER", "QFC_SIGNUP",
                                      "QFC_PUBLIC_URL", "QFC_EDGE_SECRET"}
    assert set(environment) == shared  # the worker reads what the API reads
    assert all(environment[name] == api_environment[name] for name in shared - {"POWERTOOLS_SERVICE_NAME"})
    assert int(environment["QFC_JOB_MEMORY_MB"]) < int(task["Memory"])
    assert service["DesiredCount"] == {"Ref": "JobWorkerCount"}
    assert template["Parameters"]["JobWorkerCount"]["Default"] == 0
    assert target["MinCapacity"] == {"Ref": "JobWorkerCount"}
    assert len(_jobs_of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy")) == 2


def test_the_job_container_keeps_only_the_capabilities_the_worker_needs(template: dict[str, Any]) -> None:
    task = template["Resources"]["JobTaskDefinition"]["Properties"]
    (container,) = task["ContainerDefinitions"]
    linux = container["LinuxParameters"]
    dockerfile = (REPO / "job_containers" / "Dockerfile").read_text()

    assert "Add" not in linux["Capabilities"]  # Fargate could add SYS_PTRACE only; nothing is
    assert RUNTIME_DEFAULT_CAPABILITIES - set(linux["Capabilities"]["Drop"]) == WORKER_CAPABILITIES
    assert linux["InitProcessEnabled"] is True  # reaps orphaned QGIS processes
    assert not container.get("Privileged")
    # The worker starts as root (the image's user) to give each job's QGIS process its own user.
    assert "User" not in container
    assert not re.search(r"^USER ", dockerfile, flags=re.MULTILINE)
    assert task["RuntimePlatform"]["CpuArchitecture"] == "X86_64"
    assert re.search(r"^FROM --platform=linux/amd64 ", dockerfile, flags=re.MULTILINE)
    assert "EnableExecuteCommand" not in template["Resources"]["JobService"]["Properties"]


def test_a_deployment_names_no_network_and_needs_no_look_up(template: dict[str, Any]) -> None:
    """Only the Lambda code must be given: the job workers' network is the stack's own."""
    required = {name for name, parameter in template["Parameters"].items() if "Default" not in parameter}
    assert required == {"LambdaCodeS3Bucket", "LambdaCodeS3Key"}
    assert not [name for name, parameter in template["Parameters"].items()
                if parameter["Type"].startswith("AWS::EC2") or re.search("Vpc|Subnet", name)]


def _jobs_of_type(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    """The job workers' resources of a type (the large-request service has a network of its own)."""
    return {logical_id: body for logical_id, body in resources_of_type(template, resource_type).items()
            if logical_id.startswith("Job")}


def test_job_workers_run_in_a_network_of_their_own_that_costs_nothing_at_rest(
    template: dict[str, Any],
) -> None:
    service = template["Resources"]["JobService"]
    network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    (vpc_id,) = _jobs_of_type(template, "AWS::EC2::VPC")
    subnets = _jobs_of_type(template, "AWS::EC2::Subnet")
    (acl_id,) = _jobs_of_type(template, "AWS::EC2::NetworkAcl")
    (group_id,) = _jobs_of_type(template, "AWS::EC2::SecurityGroup")
    (gateway_id,) = _jobs_of_type(template, "AWS::EC2::InternetGateway")
    attachment = template["Resources"]["JobInternetGatewayAttachment"]["Properties"]
    acl_associations = _jobs_of_type(template, "AWS::EC2::SubnetNetworkAclAssociation")
    table_associations = _jobs_of_type(template, "AWS::EC2::SubnetRouteTableAssociation")
    acl_of = {a["Properties"]["SubnetId"]["Ref"]: a["Properties"]["NetworkAclId"]["Ref"]
              for a in acl_associations.values()}
    table_of = {a["Properties"]["SubnetId"]["Ref"]: a["Properties"]["RouteTableId"]["Ref"]
                for a in table_associations.values()}
    routes = _jobs_of_type(template, "AWS::EC2::Route")

    assert network["Subnets"] == [{"Ref": subnet} for subnet in subnets] and len(subnets) == 2
    assert network["SecurityGroups"] == [{"Fn::GetAtt": [group_id, "GroupId"]}]
    assert network["AssignPublicIp"] == "ENABLED"  # how public subnets reach the internet
    assert all(subnet["Properties"]["VpcId"] == {"Ref": vpc_id} for subnet in subnets.values())
    zones = [json.dumps(subnet["Properties"]["AvailabilityZone"]) for subnet in subnets.values()]
    assert len(set(zones)) == 2 and all("Fn::GetAZs" in zone for zone in zones)
    assert acl_of == {subnet: acl_id for subnet in subnets}
    assert set(table_of) == set(subnets) and len(set(table_of.values())) == 1
    (route,) = routes.values()  # one route, to the internet gateway of this VPC
    assert route["Properties"] == {"RouteTableId": {"Ref": next(iter(table_of.values()))},
                                   "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": {"Ref": gateway_id}}
    assert attachment == {"VpcId": {"Ref": vpc_id}, "InternetGatewayId": {"Ref": gateway_id}}
    # A worker starts only once its subnets have their route and their ACL.
    assert {*routes, *acl_associations, *table_associations} <= set(service["DependsOn"])
    # Nothing that bills by the hour: no NAT gateway, no Elastic IP, no interface endpoint.
    types = {body["Type"] for body in template["Resources"].values()}
    assert not types & {"AWS::EC2::NatGateway", "AWS::EC2::EIP", "AWS::EC2::TransitGateway"}
    endpoints = _jobs_of_type(template, "AWS::EC2::VPCEndpoint").values()
    assert {e["Properties"]["VpcEndpointType"] for e in endpoints} == {"Gateway"}
    services = {e["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1] for e in endpoints}
    assert services == {"s3", "dynamodb"}
    assert all(body.get("Condition") == "DeployJobWorkers" for body in template["Resources"].values()
               if body["Type"].startswith("AWS::EC2::"))


def vpc_network(template: dict[str, Any]) -> ipaddress.IPv4Network:
    return ipaddress.ip_network(template["Resources"]["JobVpc"]["Properties"]["CidrBlock"])


def resolver_of(template: dict[str, Any]) -> ipaddress.IPv4Address:
    """The Amazon-provided DNS server: the VPC's base address plus two."""
    return vpc_network(template).network_address + 2


TCP, UDP = 6, 17
SOME_TRAFFIC = [(TCP, 443), (TCP, 5432), (TCP, 8080), (UDP, 123)]
ANSWERS = [(TCP, 40000), (UDP, 40000)]  # to the ephemeral port a connection was made from


def acl_verdicts(template: dict[str, Any], *, outbound: bool, addresses: list[str],
                 traffic: list[tuple[int, int]]) -> dict[tuple[str, int, int], str]:
    """What the network ACL does with packets to (outbound) or from each address, by protocol
    and destination port: its rules in number order, the first that matches decides, and none
    matching denies."""
    entries = resources_of_type(template, "AWS::EC2::NetworkAclEntry").values()
    rules = sorted((entry["Properties"] for entry in entries if entry["Properties"]["Egress"] == outbound),
                   key=lambda rule: rule["RuleNumber"])

    def verdict(address: str, protocol: int, port: int) -> str:
        for rule in rules:
            ports = rule.get("PortRange", {"From": 0, "To": 65535})
            if rule["Protocol"] in (-1, protocol) and ports["From"] <= port <= ports["To"] \
                    and ipaddress.ip_address(address) in ipaddress.ip_network(rule["CidrBlock"]):
                return rule["RuleAction"]
        return "deny"

    return {(address, protocol, port): verdict(address, protocol, port)
            for address in addresses for protocol, port in traffic}


def allowed_ones(verdicts: dict[tuple[str, int, int], str]) -> list[tuple[str, int, int]]:
    return [packet for packet, verdict in verdicts.items() if verdict == "allow"]


def denied_ones(verdicts: dict[tuple[str, int, int], str]) -> list[tuple[str, int, int]]:
    return [packet for packet, verdict in verdicts.items() if verdict != "allow"]


def addresses_in(network: ipaddress.IPv4Network) -> list[str]:
    return [str(network.network_address + 1), str(network.network_address + network.num_addresses // 2),
            str(network.broadcast_address - 1)]


def test_the_network_acl_keeps_job_workers_off_every_private_address(template: dict[str, Any]) -> None:
    resolver = [str(resolver_of(template))]
    private = [a for network in [vpc_network(template), *PRIVATE_RANGES] for a in addresses_in(network)]
    private += ["169.254.169.254", "169.254.170.2"]  # instance and task metadata
    # The internet, just outside each private range too.
    public = ["8.8.8.8", "52.219.170.1", "11.0.0.1", "172.15.255.255", "172.32.0.0", "192.167.255.255",
              "192.169.0.0", "100.63.255.255", "100.128.0.0", "169.253.255.255", "169.255.0.0"]

    assert allowed_ones(acl_verdicts(template, outbound=True, addresses=private, traffic=SOME_TRAFFIC)) == []
    assert allowed_ones(acl_verdicts(template, outbound=False, addresses=private,
                                     traffic=SOME_TRAFFIC + ANSWERS)) == []
    # The resolver answers DNS, and nothing else: AWS endpoints and the projects' hosts are found
    # by name. (Its answers may come to any ephemeral port: the ACL keeps no state.)
    assert allowed_ones(acl_verdicts(template, outbound=True, addresses=resolver, traffic=SOME_TRAFFIC)) == []
    assert denied_ones(acl_verdicts(template, outbound=True, addresses=resolver,
                                    traffic=[(TCP, 53), (UDP, 53)])) == []
    assert denied_ones(acl_verdicts(template, outbound=False, addresses=resolver, traffic=ANSWERS)) == []
    # The internet on any port, and its answers.
    assert denied_ones(acl_verdicts(template, outbound=True, addresses=public,
                                    traffic=SOME_TRAFFIC + [(UDP, 53)])) == []
    assert denied_ones(acl_verdicts(template, outbound=False, addresses=public, traffic=ANSWERS)) == []


def test_the_security_group_lets_nothing_in_and_out_only_to_the_internet(
    template: dict[str, Any],
) -> None:
    group = template["Resources"]["JobSecurityGroup"]["Properties"]
    egress = group["SecurityGroupEgress"]
    anything = [ipaddress.ip_network(rule["CidrIp"]) for rule in egress if rule["IpProtocol"] == "-1"]
    dns = [(rule["IpProtocol"], rule["FromPort"], rule["ToPort"], rule["CidrIp"]) for rule in egress
           if rule["IpProtocol"] != "-1"]
    public_addresses = 2 ** 32 - sum(network.num_addresses for network in PRIVATE_RANGES)

    assert "SecurityGroupIngress" not in group
    assert not [body for body in template["Resources"].values()
                if body["Type"] in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")]
    assert vpc_network(template).subnet_of(ipaddress.ip_network("10.0.0.0/8"))
    assert not [n for n in anything if any(n.overlaps(private) for private in PRIVATE_RANGES)]
    # No two rules overlap, so together they are every public address, each once.
    assert sum(n.num_addresses for n in ipaddress.collapse_addresses(anything)) == public_addresses
    assert sum(n.num_addresses for n in anything) == public_addresses
    resolver = f"{resolver_of(template)}/32"
    assert sorted(dns) == [("tcp", 53, 53, resolver), ("udp", 53, 53, resolver)]


# --- IAM: least privilege ---------------------------------------------------------------------


def policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, body in template["Resources"].items():
        properties = body["Properties"]
        if body["Type"] == "AWS::IAM::Role":
            assert "ManagedPolicyArns" not in properties, f"{logical_id}: managed policies"
            for policy in properties.get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    yield logical_id, statement
        elif body["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for statement in properties["PolicyDocument"]["Statement"]:
                yield logical_id, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def referenced_resources(value: Any) -> set[str]:
    """Logical ids a value refers to through Ref, Fn::GetAtt or Fn::Sub."""
    if isinstance(value, dict):
        if "Ref" in value:
            return {value["Ref"]}
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            return {name.split(".")[0] for name in re.findall(r"\$\{([^}]+)\}", text)}
    return set()


def names_this_account(resource: Any) -> bool:
    """An ARN pattern confined to this stack's account (ECR repositories the image comes from)."""
    return isinstance(resource, dict) and "${AWS::AccountId}" in str(resource.get("Fn::Sub"))


def test_iam_statements_reach_only_the_stacks_own_resources(template: dict[str, Any]) -> None:
    resource_types = {logical_id: body["Type"] for logical_id, body in template["Resources"].items()}
    problems = []
    for role, statement in policy_statements(template):
        actions = as_list(statement["Action"])
        resources = as_list(statement["Resource"])
        where = f"{role}/{statement.get('Sid')}"
        if statement["Effect"] != "Allow" or "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{where}: only plain Allow statements are expected")
        if any(action == "*" or action.endswith(":*") for action in actions):
            problems.append(f"{where}: wildcard action")
        if "*" in resources:
            if not set(actions) <= RESOURCELESS_ACTIONS:
                problems.append(f"{where}: Resource '*' for {actions}")
            continue
        for service in {action.split(":")[0] for action in actions}:
            for resource in resources:
                stack_resources = referenced_resources(resource) & set(resource_types)
                wanted = RESOURCE_TYPE_OF_SERVICE.get(service)
                if wanted and {resource_types[r] for r in stack_resources} != {wanted}:
                    problems.append(f"{where}: {service} on {resource}, not on a {wanted} here")
                elif not wanted and not (stack_resources or names_this_account(resource)):
                    problems.append(f"{where}: {resource} is outside this stack and account")
    assert problems == []


def test_the_api_may_send_mail_only_from_the_operators_sender_and_only_when_there_is_one(
        template: dict[str, Any]) -> None:
    ses = [(logical_id, statement) for logical_id, statement in policy_statements(template)
           if any(action.startswith("ses:") for action in as_list(statement["Action"]))]
    [(logical_id, statement)] = ses
    policy = template["Resources"][logical_id]
    assert policy["Properties"]["Roles"] == [{"Ref": "ApiFunctionRole"}]
    assert template["Conditions"][policy["Condition"]] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "MailSender"}, ""]}]}
    assert statement["Action"] == ["ses:SendEmail"]
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "MailSender"}}}
    identity = ":ses:${AWS::Region}:${AWS::AccountId}:identity/"
    assert all(identity in json.dumps(resource) for resource in statement["Resource"])
    environment = the_function(template)["Environment"]["Variables"]
    assert environment["QFC_MAIL_SENDER"] == {"Ref": "MailSender"}
    assert environment["QFC_SIGNUP"] == {"Ref": "Signup"}
    parameters = template["Parameters"]
    assert (parameters["MailSender"]["Default"], parameters["Signup"]["Default"]) == ("", "0")
    # The links in those mails name the public URL (./dev deploy sets PublicUrl to ServerUrl on
    # AWS); unset, the function names the host each request came to.
    assert environment["QFC_PUBLIC_URL"] == {"Fn::If": ["HasPublicUrl", {"Ref": "PublicUrl"},
                                                        {"Ref": "AWS::NoValue"}]}
    assert parameters["PublicUrl"]["Default"] == ""


def test_api_role_reaches_every_table_and_index_but_cannot_scan(template: dict[str, Any]) -> None:
    statements = [s for role, s in policy_statements(template) if role == "ApiFunctionRole"]
    dynamodb = [s for s in statements if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    granted = {json.dumps(r, sort_keys=True) for s in dynamodb for r in as_list(s["Resource"])}
    tables = resources_of_type(template, "AWS::DynamoDB::Table")

    for logical_id, table in tables.items():
        assert json.dumps({"Fn::GetAtt": [logical_id, "Arn"]}, sort_keys=True) in granted
        if table["Properties"].get("GlobalSecondaryIndexes"):
            index_arn = {"Fn::Sub": f"${{{logical_id}.Arn}}/index/*"}
            assert json.dumps(index_arn, sort_keys=True) in granted
    assert all("dynamodb:Scan" not in as_list(s["Action"]) for s in statements)
    queue_actions = {a for s in statements for a in as_list(s["Action"]) if a.startswith("sqs:")}
    assert "sqs:SendMessage" in queue_actions
    assert "sqs:ReceiveMessage" not in queue_actions


# --- The Lambda package -----------------------------------------------------------------------


def test_lambda_package_holds_the_app_and_the_runtime_dependencies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra import package

    installed: list[list[str]] = []

    def install_offline(requirements: list[str], target: Path) -> None:
        installed.append(requirements)
        (target / "chalice").mkdir()
        (target / "chalice" / "__init__.py").write_text("")

    monkeypatch.setattr(package, "install_dependencies", install_offline)
    out = tmp_path / "lambda.zip"
    package.build_package(out)
    names = set(zipfile.ZipFile(out).namelist())
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))

    assert installed == [pyproject["project"]["dependencies"]]
    assert {"app.py", "chalice/__init__.py", "chalicelib/__init__.py"} <= names
    assert {f"chalicelib/models/{p.name}" for p in (REPO / "chalicelib/models").glob("*.py")} <= names
    assert not [name for name in names if name.startswith("chalicelib/maintenance/")]
    # Bytecode of every module, compiled here (none copied from the checkout), naming /var/task,
    # and used by its presence alone: Lambda's folder is read-only, nothing is compiled there.
    compiled = {name for name in names if name.endswith(".pyc")}
    sources = {name for name in names if name.endswith(".py")}
    expected = {f"{Path(source).parent}/__pycache__/{Path(source).stem}.{sys.implementation.cache_tag}.pyc"
                .removeprefix("./") for source in sources}
    assert compiled == expected
    with zipfile.ZipFile(out) as archive:
        bytecode = archive.read(f"chalicelib/__pycache__/__init__.{sys.implementation.cache_tag}.pyc")
    assert bytecode[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(bytecode[4:8], "little") == 0b01  # hash-based, source never checked
    assert marshal.loads(bytecode[16:]).co_filename == "/var/task/chalicelib/__init__.py"
    again = tmp_path / "again.zip"
    package.build_package(again)
    assert again.read_bytes() == out.read_bytes()  # the same code makes the same zip


def job_worker_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [statement for role, statement in policy_statements(template) if role == "JobTaskRole"]


def granted(statements: list[dict[str, Any]], service: str) -> list[Any]:
    return [resource for s in statements if any(a.startswith(f"{service}:") for a in as_list(s["Action"]))
            for resource in as_list(s["Resource"])]


def test_job_workers_reach_project_objects_their_tables_and_both_queues_only(
    template: dict[str, Any],
) -> None:
    statements = job_worker_statements(template)
    objects = [resource["Fn::Sub"] for resource in granted(statements, "s3")]
    received = {json.dumps(r) for s in statements if "sqs:ReceiveMessage" in as_list(s["Action"])
                for r in as_list(s["Resource"])}
    tables = {table for arn in granted(statements, "dynamodb") for table in referenced_resources(arn)}
    logical_id_of = {suffix: body["logical_id"] for suffix, body in tables_by_name_suffix(template).items()}

    assert objects and all(key.startswith("${FilesBucket.Arn}/projects/*/") for key in objects)
    assert received == {json.dumps({"Fn::GetAtt": [q, "Arn"]}) for q in ("JobsQueue", "JobsDeadLetterQueue")}
    assert all("dynamodb:Scan" not in as_list(s["Action"]) for s in statements)
    # Stolen, a worker's credentials would log nobody in, nor read or change who may see what.
    assert tables and not tables & {logical_id_of[name] for name in (
        "auth-tokens", "login-attempts", "collaborators", "memberships", "teams", "upload-sessions")}


@contextmanager
def aws_calls_recorded(calls: list[tuple[str, str, dict[str, Any]]]) -> Iterator[None]:
    """Every AWS call made meanwhile, as (service, operation, parameters), still made to moto."""
    make_api_call = BaseClient._make_api_call

    def recorded(client: BaseClient, operation: str, parameters: dict[str, Any]) -> Any:
        calls.append((client.meta.service_model.service_name, operation, parameters))
        return make_api_call(client, operation, parameters)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseClient, "_make_api_call", recorded)
        yield


S3_OBJECT_ACTIONS = {"GetObject": "GetObject", "HeadObject": "GetObject", "PutObject": "PutObject",
                     "DeleteObject": "DeleteObject", "CreateMultipartUpload": "PutObject",
                     "UploadPart": "PutObject", "CompleteMultipartUpload": "PutObject"}


@dataclass
class MotoArns:
    """Where the stack's tables, bucket and queues are in moto."""

    table_prefix: str  # the ARN of a table named "" (`arn:aws:dynamodb:…:table/`)
    bucket: str
    queues: dict[str, str]  # by URL

    @classmethod
    def read(cls) -> MotoArns:
        from chalicelib.adapters import aws
        from chalicelib.adapters import job_queue as queue
        from chalicelib.models import Job

        urls = (queue.jobs_queue_url(), queue.dead_letter_queue_url())
        return cls(
            table_prefix=Job.describe_table()["TableArn"].removesuffix(Job.Meta.table_name),
            bucket=f"arn:aws:s3:::{settings.bucket}",
            queues={url: aws.sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
                    ["Attributes"]["QueueArn"] for url in urls},
        )

    def of_stack(self, template: dict[str, Any]) -> dict[str, str]:
        """By the template's logical ids."""
        from chalicelib.adapters import job_queue as queue

        tables = {body["logical_id"]: self.table_prefix + settings.table_prefix + suffix
                  for suffix, body in tables_by_name_suffix(template).items()}
        return {**tables, "FilesBucket": self.bucket,
                "JobsQueue": self.queues[queue.jobs_queue_url()],
                "JobsDeadLetterQueue": self.queues[queue.dead_letter_queue_url()]}


def authorizations(service: str, operation: str, parameters: dict[str, Any],
                   arns: MotoArns) -> list[tuple[str, str]]:
    """The (action, resource) pairs IAM checks for one call, as the services' authorization
    references list them; a call not described here is `unmapped:…`, which no policy allows."""
    if service == "dynamodb" and ({"TransactItems", "RequestItems", "TableName"} & set(parameters)):
        return dynamodb_authorizations(operation, parameters, lambda name: arns.table_prefix + name)
    if service == "s3" and operation in S3_OBJECT_ACTIONS:
        versioned = "Version" if "VersionId" in parameters and operation != "PutObject" else ""
        return [(f"s3:{S3_OBJECT_ACTIONS[operation]}{versioned}", f"{arns.bucket}/{parameters['Key']}")]
    if service == "s3" and operation == "DeleteObjects":
        return [("s3:DeleteObjectVersion" if "VersionId" in item else "s3:DeleteObject",
                 f"{arns.bucket}/{item['Key']}") for item in parameters["Delete"]["Objects"]]
    if service == "sqs" and parameters.get("QueueUrl") in arns.queues:
        return [(f"sqs:{operation}", arns.queues[parameters["QueueUrl"]])]
    return [(f"unmapped:{service}:{operation}", json.dumps(parameters, default=str)[:200])]


def resolved(resource: Any, stack_arns: dict[str, str]) -> str:
    """A policy's resource (a GetAtt or Sub of the stack's resources' ARNs) as it is in moto."""
    if "Fn::GetAtt" in resource:
        return stack_arns[resource["Fn::GetAtt"][0]]
    return re.sub(r"\$\{(\w+)\.Arn\}", lambda match: stack_arns[match[1]], resource["Fn::Sub"])


def worker_authorizations(template: dict[str, Any], calls: list[tuple[str, str, dict[str, Any]]]
                          ) -> tuple[set[tuple[str, str]], list[tuple[str, str]]]:
    """The (action, ARN) pairs the recorded calls need, and those the job worker's role denies."""
    arns = MotoArns.read()
    stack_arns = arns.of_stack(template)
    allowed = [(set(as_list(s["Action"])), [resolved(r, stack_arns) for r in as_list(s["Resource"])])
               for s in job_worker_statements(template)]
    requested = {pair for call in calls for pair in authorizations(*call, arns)}
    denied = sorted((action, arn) for action, arn in requested
                    if not any(action in actions and any(fnmatchcase(arn, p) for p in patterns)
                               for actions, patterns in allowed))
    return requested, denied


def test_the_job_workers_role_allows_every_call_a_worker_makes(
    template: dict[str, Any], users: Any, override_settings: Any
) -> None:
    """A worker runs a project's jobs in moto, its calls recorded: the task role must allow each
    (moto does not enforce IAM, so the policy is evaluated here as IAM would: an Allow whose
    actions name the call's and whose resource pattern matches its ARN)."""
    from chalicelib.adapters import job_queue as queue
    from job_containers.worker import Worker

    # As on AWS, where the stack gives the worker its queues' URLs.
    override_settings(jobs_queue_url=queue.jobs_queue_url(),
                      jobs_dead_letter_queue_url=queue.dead_letter_queue_url())
    alice, bob = users("alice"), users("bob")
    project = alice.create_project("deltas")["id"]
    bob_edits = alice.post(f"collaborators/{project}/", data={"collaborator": "bob", "role": "editor"})
    assert bob_edits.status == 201
    # And a project whose layers come from alice's shared datasets.
    shared = alice.create_project("shared_datasets")["id"]
    app_data = shared_data.testdata() / "app"
    upload(alice, shared, "bumblebees.gpkg", (app_data / "bumblebees.gpkg").read_bytes())
    localized = alice.create_project("localized")["id"]
    localized_project = (app_data / "simple_bumblebees_correct_localized.qgs").read_bytes()
    upload(alice, localized, "project.qgs", localized_project)
    calls: list[tuple[str, str, dict[str, Any]]] = []
    upload_tree(alice, project, shared_data.testdata() / "app" / "delta", DELTA_FILES)
    with aws_calls_recorded(calls):
        run_jobs()  # both processed: their files read, their thumbnails and reports stored
    assert push(bob, project, deltafile("singlelayer_singledelta.json", project)).status == 200
    assert alice.post("jobs/", json={"project_id": project, "type": "package"}).status == 201
    upload_tree(alice, project, shared_data.testdata() / "app" / "delta", ["project.qgs"])
    with aws_calls_recorded(calls):
        run_jobs()  # bob's delta applied (a new file version), packaged, processed again
    assert push(bob, project, deltafile("multilayer_multidelta_create.json", project)).status == 200
    with aws_calls_recorded(calls):
        Worker().sweep(starting=True)  # a starting worker announces the waiting job again
        run_jobs()
    jobs = alice.get(f"jobs/?project_id={project}").json() + alice.get(f"jobs/?project_id={localized}").json()
    assert sorted(job["type"] for job in jobs if job["status"] == "finished") == [
        "delta_apply", "delta_apply", "package", "process_projectfile", "process_projectfile",
        "process_projectfile"]

    requested, denied = worker_authorizations(template, calls)

    assert denied == []
    assert {"dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:PutItem", "s3:GetObjectVersion",
            "s3:PutObject", "s3:DeleteObjectVersion", "sqs:ReceiveMessage", "sqs:DeleteMessage",
            "sqs:SendMessage"} <= {action for action, _ in requested}


def test_the_job_image_installs_what_dev_installs() -> None:
    """One list of Debian packages for development machines, CI and the job image."""
    dockerfile = (REPO / "job_containers" / "Dockerfile").read_text()
    bootstrap = (REPO / "scripts" / "bootstrap.sh").read_text()
    assert "COPY job_containers/apt-packages.txt" in dockerfile
    assert "job_containers/apt-packages.txt" in bootstrap
    packages = [line for line in (REPO / "job_containers" / "apt-packages.txt").read_text().splitlines()
                if line and not line.startswith("#")]
    assert {"python3-qgis", "qgis-providers"} <= set(packages)
    assert 'ENTRYPOINT ["/venv/bin/python", "-m", "job_containers.worker"]' in dockerfile
    for source in re.findall(r"^COPY (\S+) ", dockerfile, flags=re.MULTILINE):
        assert all((REPO / part).exists() for part in source.split()), source


def resolved_pseudo(resource: Any, pseudo: dict[str, str]) -> str:
    """A policy's `Fn::Sub` of pseudo parameters (`${AWS::Region}`…) as it is in moto."""
    return re.sub(r"\$\{(AWS::\w+)\}", lambda match: pseudo[match[1]], resource["Fn::Sub"])


def test_on_aws_a_deletion_invokes_the_function_itself_as_its_role_allows_and_the_event_purges(
    template: dict[str, Any], alice: Any, monkeypatch: pytest.MonkeyPatch, override_settings: Any
) -> None:
    """The purge's self-invocation, through moto's Lambda API: the function the template
    deploys exists in moto under the name the template gives it, a deletion invokes it
    asynchronously (recorded as moto's Lambda received it; moto runs no code without Docker),
    the API's role allows that call as IAM would evaluate it, and the event moto received, given
    to the function's handler, purges the project."""
    import boto3
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.config import default_user_config

    import app
    from tests.test_project_deletion import NOTHING, leftovers

    stack, region = "qfc-selftest", settings.region
    pseudo = {"AWS::StackName": stack, "AWS::Region": region, "AWS::Partition": "aws"}
    function_name = resolved_pseudo(the_function(template)["FunctionName"], pseudo)
    # moto's Lambda without Docker: it answers every invocation and runs nothing.
    monkeypatch.setitem(default_user_config, "lambda", {"use_docker": False})
    iam = boto3.client("iam", region_name=region)
    role_id = the_function(template)["Role"]["Fn::GetAtt"][0]
    trust = template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]
    role = iam.create_role(RoleName=f"{stack}-api", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    created = boto3.client("lambda", region_name=region).create_function(
        FunctionName=function_name, Runtime="python3.11", Role=role["Arn"], Handler="app.handler",
        Code={"ZipFile": _a_zip()})  # moto keeps the code and runs none of it
    pseudo["AWS::AccountId"] = created["FunctionArn"].split(":")[4]
    received: list[tuple[str, dict[str, str], bytes]] = []
    invoke = LambdaSimpleBackend.invoke

    def recorded(self, function_name, qualifier, body, headers, response_headers):
        self.get_function(function_name, qualifier)  # moto's simple backend does not check it
        received.append((function_name, dict(headers), body))
        return invoke(self, function_name, qualifier, body, headers, response_headers)

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", recorded)
    override_settings(background_tasks="auto")  # as deployed: on Lambda, by invoking itself
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", function_name)  # what Lambda sets

    pid = alice.create_project("doomed")["id"]
    for n in range(3):
        assert upload(alice, pid, f"{n}.txt", b"x" * 1000).status == 201
    calls: list[tuple[str, str, dict[str, Any]]] = []
    with aws_calls_recorded(calls):
        assert alice.delete(f"projects/{pid}/").status == 204
    assert alice.get(f"projects/{pid}/").status == 404
    assert leftovers(pid)["files"] == 3  # not purged yet: that is the invoked function's work

    (invoked,) = [parameters for service, operation, parameters in calls
                  if (service, operation) == ("lambda", "Invoke")]
    (arrived,) = received
    assert arrived[0] == function_name and arrived[1].get("X-Amz-Invocation-Type") == "Event"
    statements = [s for logical_id, s in policy_statements(template) if logical_id == role_id]
    allowed = [resolved_pseudo(r, pseudo) for s in statements
               if "lambda:InvokeFunction" in as_list(s["Action"]) for r in as_list(s["Resource"])]
    assert invoked["FunctionName"] == function_name
    assert allowed == [created["FunctionArn"]]  # its own function, and nothing else

    answer = app.handler(json.loads(arrived[2]), None)  # Lambda delivers the event to the handler
    assert answer["done"]
    assert leftovers(pid) == NOTHING


def _a_zip() -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "")
    return buffer.getvalue()


def test_the_job_workers_role_allows_removing_what_a_job_stored_for_a_project_deleted_meanwhile(
    template: dict[str, Any], users: Any, override_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package job whose project is deleted while its core runs removes what it stored after
    (job_containers.runner): the task role must allow those calls too (the deletion itself is
    the API's, not recorded)."""
    from chalicelib.adapters import job_queue as queue
    from chalicelib.models import Project
    from chalicelib.services import project_deletion
    from job_containers.workspace import Workspace

    override_settings(jobs_queue_url=queue.jobs_queue_url(),
                      jobs_dead_letter_queue_url=queue.dead_letter_queue_url())
    alice = users("alice")
    project = alice.create_project("doomed")["id"]
    qgs = (shared_data.testdata() / "app" / "self_contained.qgs").read_bytes()
    assert upload(alice, project, "project.qgs", qgs).status == 201
    run_jobs()
    assert alice.post("jobs/", json={"project_id": project, "type": "package"}).status == 201
    run_core, make_api_call = Workspace.run_core, BaseClient._make_api_call

    def deleted_meanwhile(self, *args, **kwargs):
        result = run_core(self, *args, **kwargs)
        with pytest.MonkeyPatch.context() as patch:  # the API's calls
            patch.setattr(BaseClient, "_make_api_call", make_api_call)
            project_deletion.request_deletion(Project.get(project))
        return result

    monkeypatch.setattr(Workspace, "run_core", deleted_meanwhile)
    calls: list[tuple[str, str, dict[str, Any]]] = []
    with aws_calls_recorded(calls):
        run_jobs()

    requested, denied = worker_authorizations(template, calls)
    removed = {arn.split(f"/{project}/")[1].split("/")[0] for action, arn in requested
               if action == "s3:DeleteObjectVersion"}
    assert denied == []
    assert removed == {"jobs", "packages"}  # the job's report and its package files
