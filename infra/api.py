"""The API: one Lambda function behind a regional API Gateway REST API.

The API definition is Chalice's own swagger for the app's routes, so API Gateway matches exactly
the routes the app registers (and the local gateway emulates), each with the Lambda proxy
integration.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from chalice import Chalice
from chalice.deploy.swagger import CFNSwaggerGenerator

from chalicelib.errors import UnknownRoute, error_json
from chalicelib.http import limits
from chalicelib.http.routing import API_PREFIX

from .cfn import NO_VALUE, Json, get_att, if_, ref, resource, sub
from .environment import service_environment
from .parameters import (
    API_MEMORY,
    EDGE_SECRET,
    HAS_PUBLIC_URL,
    LAMBDA_CODE_BUCKET,
    LAMBDA_CODE_KEY,
    LOG_RETENTION,
    MAIL_SENDER,
    PUBLIC_URL,
    SIGNUP,
)

FUNCTION = "ApiFunction"
FUNCTION_ROLE = "ApiFunctionRole"
FUNCTION_LOGS = "ApiFunctionLogGroup"
FUNCTION_PERMISSION = "ApiFunctionInvokePermission"
REST_API = "RestApi"
STAGE = "ApiStage"
# Chalice's stage name: the API lives at https://{api}.execute-api.{region}.amazonaws.com/api/api/v1/
STAGE_NAME = "api"
SERVICE_NAME = "qfc-api"

# API Gateway answers 504 after 29 s, but the function goes on: completing a presigned upload of
# several GB (one streamed read of the object to checksum it) finishes in the background while the
# client polls. Other requests take well under a second.
FUNCTION_TIMEOUT_SECONDS = 900

class _SwaggerForThisTemplate(CFNSwaggerGenerator):
    """Chalice's CloudFormation swagger, pointed at this template's function."""

    def _uri(self, lambda_arn: str | None = None) -> Any:
        return sub(
            "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31"
            f"/functions/${{{FUNCTION}.Arn}}/invocations"
        )


# API Gateway's own answers, in the API's error format. `messageString` is API Gateway's message
# already quoted as a JSON string. They live in the API definition rather than in separate
# AWS::ApiGateway::GatewayResponse resources: an update of the definition may drop gateway
# responses it does not contain (cfn-lint W3660), silently undoing them.
GATEWAY_RESPONSES: dict[str, Json] = {
    "MISSING_AUTHENTICATION_TOKEN": {
        # What API Gateway answers for a path or method no route matches.
        "statusCode": "404",
        "responseTemplates": {"application/json": error_json(UnknownRoute())},
    },
    "REQUEST_TOO_LARGE": {
        "statusCode": "413",
        "responseTemplates": {
            "application/json": error_json(limits.too_large())
        },
    },
    "DEFAULT_4XX": {
        "responseTemplates": {
            "application/json": '{"code": "api_error", "message": $context.error.messageString}'
        },
    },
    "DEFAULT_5XX": {
        "responseTemplates": {
            "application/json": '{"code": "unknown_error", "message": $context.error.messageString}'
        },
    },
}


def _declare_greedy_parameters(definition: Json) -> None:
    """Chalice's swagger leaves out greedy path parameters (`{filename+}`); API Gateway wants
    every path parameter declared."""
    for path, operations in definition["paths"].items():
        greedy = [segment[1:-2] for segment in path.split("/") if segment.endswith("+}")]
        for operation in operations.values():
            operation.setdefault("parameters", []).extend(
                {"name": name, "in": "path", "required": True, "type": "string"} for name in greedy
            )


def api_definition(app: Chalice) -> Json:
    """The OpenAPI (swagger 2.0) body of the REST API: every route and method of `app`, and the
    gateway responses."""
    definition = _SwaggerForThisTemplate().generate_swagger(app)
    _declare_greedy_parameters(definition)
    definition["x-amazon-apigateway-gateway-responses"] = GATEWAY_RESPONSES
    # Every answer may be bytes (a compressed JSON answer, chalicelib/http/compression.py), and
    # API Gateway decides by the client's Accept, which is often `*/*` or absent.
    definition["x-amazon-apigateway-binary-media-types"] = list(limits.BINARY_MEDIA_TYPES)
    return definition


def _deployment_id(definition: Json) -> str:
    # CloudFormation only redeploys an API when the deployment is a new resource, so the
    # deployment's name changes whenever the API definition does.
    content = json.dumps(definition, sort_keys=True).encode()
    return "ApiDeployment" + hashlib.sha256(content).hexdigest()[:12]


def rest_api_resources(app: Chalice) -> Json:
    definition = api_definition(app)
    deployment = _deployment_id(definition)
    return {
        REST_API: resource(
            "AWS::ApiGateway::RestApi",
            {
                "Name": sub("${AWS::StackName}-api"),
                "Body": definition,
                "EndpointConfiguration": {"Types": ["REGIONAL"]},
            },
        ),
        deployment: resource(
            "AWS::ApiGateway::Deployment",
            {"RestApiId": ref(REST_API), "Description": "Routes of the Chalice app"},
        ),
        STAGE: resource(
            "AWS::ApiGateway::Stage",
            {"RestApiId": ref(REST_API), "DeploymentId": ref(deployment), "StageName": STAGE_NAME},
        ),
        FUNCTION_PERMISSION: resource(
            "AWS::Lambda::Permission",
            {
                "FunctionName": get_att(FUNCTION, "Arn"),
                "Action": "lambda:InvokeFunction",
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": sub(
                    "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
                    f"${{{REST_API}}}/*"
                ),
            },
        ),
    }


def function_environment() -> Json:
    return {**service_environment(SERVICE_NAME),
            "QFC_MAX_DIRECT_UPLOAD_BYTES": str(limits.MAX_DIRECT_UPLOAD_BYTES),
            # Account self-service the operator turns on (docs/api.md, "Accounts").
            "QFC_MAIL_SENDER": ref(MAIL_SENDER),
            "QFC_SIGNUP": ref(SIGNUP),
            "QFC_PUBLIC_URL": if_(HAS_PUBLIC_URL, ref(PUBLIC_URL), NO_VALUE),
            # What CloudFront adds to the requests it sends here (infra/edge.py): with it the
            # viewer's address is believed (chalicelib/http/client_address.py).
            "QFC_EDGE_SECRET": ref(EDGE_SECRET)}


def function_resources() -> Json:
    return {
        FUNCTION_LOGS: resource(
            "AWS::Logs::LogGroup",
            {
                "LogGroupName": sub("/aws/lambda/${AWS::StackName}-api"),
                "RetentionInDays": ref(LOG_RETENTION),
            },
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        ),
        FUNCTION: resource(
            "AWS::Lambda::Function",
            {
                "FunctionName": sub("${AWS::StackName}-api"),
                "Description": "QFieldCloud-compatible API (Chalice app)",
                "Runtime": "python3.11",
                "Handler": "app.handler",
                # infra.package builds the zip with manylinux x86_64 wheels.
                "Architectures": ["x86_64"],
                "Code": {"S3Bucket": ref(LAMBDA_CODE_BUCKET), "S3Key": ref(LAMBDA_CODE_KEY)},
                "Role": get_att(FUNCTION_ROLE, "Arn"),
                "MemorySize": ref(API_MEMORY),
                "Timeout": FUNCTION_TIMEOUT_SECONDS,
                "Environment": {"Variables": function_environment()},
                "LoggingConfig": {"LogGroup": ref(FUNCTION_LOGS)},
            },
        ),
    }


def api_url() -> Json:
    return sub(
        f"https://${{{REST_API}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}"
        f"/{STAGE_NAME}{API_PREFIX}/"
    )


def server_root_url() -> Json:
    """What QField calls the server URL. QField appends `/api/v1/...` itself, so no trailing slash."""
    return sub(
        f"https://${{{REST_API}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{STAGE_NAME}"
    )


def api_gateway_resource_paths(definition: Json) -> set[str]:
    """The API Gateway resources an import of `definition` creates: every path prefix, and "/"."""
    paths = {"/"}
    for path in definition["paths"]:
        segments = path.strip("/").split("/")
        paths.update("/" + "/".join(segments[:depth]) for depth in range(1, len(segments) + 1))
    return paths
