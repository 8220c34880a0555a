"""CloudFront: the one public URL of the server (`ServerUrl`), in front of API Gateway and the
large-request service.

A CloudFront Function on every viewer request applies the rule of chalicelib/http/limits.py
(`takes_large_path`): a file upload whose body is larger than the function takes, or of unknown
length (chunked), goes to the large-request service (infra/large_requests.py, through a VPC
origin: its load balancer is internal); everything else goes to API Gateway, which keeps its
limits. The function sees the headers only (CloudFront Functions never see a body), which is
all the rule needs. Locally devstack/edge.py applies the same rule.

Nothing is cached: every answer depends on the caller (`CachingDisabled`), and every viewer
header but Host reaches the origins (`AllViewerExceptHostHeader`; with caching disabled that
includes Authorization). Without the viewer's Host, API Gateway is asked under its own
execute-api name, the only one it answers to, whichever name the viewer used: CloudFront's own,
or the operator's domain (infra/domain.py, the distribution's Aliases and certificate).
`distribution_parts` returns the origins and behaviours, so another part of the template (the
console's S3 origin) can add its own before the distribution is made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from chalicelib.http import limits

from . import domain
from .api import REST_API, STAGE_NAME
from .cfn import NO_VALUE, Json, get_att, if_, resource, sub
from .large_requests import LOAD_BALANCER
from .parameters import DEPLOY_JOB_WORKERS

DISTRIBUTION = "Distribution"
EDGE_FUNCTION = "EdgeFunction"
VPC_ORIGIN = "LargeRequestsVpcOrigin"
API_ORIGIN_ID = "api"
LARGE_REQUESTS_ORIGIN_ID = "large-requests"
# AWS's managed policies (their ids are the same in every account).
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
# CloudFront waits this long for an origin's answer; API Gateway gives up at 29 s, and the
# service answers an upload once it is stored (completing a multipart upload of 10 GB takes S3
# some seconds).
ORIGIN_READ_TIMEOUT_SECONDS = 60

ROUTING_FUNCTION = """\
import cf from 'cloudfront';

// chalicelib/http/limits.py, takes_large_path: the same rule, the same numbers.
var LARGE_BODY_BYTES = %(large_body_bytes)d;
var LARGE_UPLOAD_METHOD = %(method)s;
var LARGE_UPLOAD_PATH = new RegExp(%(path)s);

function handler(event) {
    var request = event.request;
    if (request.method !== LARGE_UPLOAD_METHOD || !LARGE_UPLOAD_PATH.test(request.uri)) {
        return request;
    }
    var length = request.headers['content-length'];
    var large;
    if (request.headers['transfer-encoding'] !== undefined || length === undefined) {
        large = true;  // chunked, or of unknown length
    } else {
        large = /^[0-9]+$/.test(length.value) && parseInt(length.value, 10) > LARGE_BODY_BYTES;
    }
    if (large) {
        cf.selectRequestOriginById(%(origin)s);
    }
    return request;
}
"""


def routing_function_code() -> str:
    """The CloudFront Function's JavaScript (cloudfront-js-2.0), with limits.py's numbers."""
    return ROUTING_FUNCTION % {
        "large_body_bytes": limits.LARGE_BODY_BYTES,
        "method": json.dumps(limits.LARGE_UPLOAD_METHOD),
        "path": json.dumps(limits.LARGE_UPLOAD_PATH),
        "origin": json.dumps(LARGE_REQUESTS_ORIGIN_ID),
    }


@dataclass
class DistributionParts:
    """What the distribution serves: its origins, its default behaviour and the behaviours by
    path (CloudFront tries those in order, then the default). Add an origin and a behaviour
    (e.g. the console's S3 bucket at `/console/*`) before `distribution_resources` makes it."""

    origins: list[Json]
    default_behaviour: Json
    behaviours: list[Json] = field(default_factory=list)
    root_object: str | None = None  # what `/` serves (DefaultRootObject)


def _api_origin() -> Json:
    return {
        "Id": API_ORIGIN_ID,
        "DomainName": sub(f"${{{REST_API}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}"),
        # Chalice's stage: /api/v1/... reaches API Gateway as /api/api/v1/..., as the app expects.
        "OriginPath": f"/{STAGE_NAME}",
        "CustomOriginConfig": {"OriginProtocolPolicy": "https-only", "OriginSSLProtocols": ["TLSv1.2"],
                               "OriginReadTimeout": ORIGIN_READ_TIMEOUT_SECONDS},
    }


def _large_requests_origin() -> Json:
    return if_(DEPLOY_JOB_WORKERS, {
        "Id": LARGE_REQUESTS_ORIGIN_ID,
        "DomainName": get_att(LOAD_BALANCER, "DNSName"),
        "VpcOriginConfig": {"VpcOriginId": get_att(VPC_ORIGIN, "Id"),
                            "OriginReadTimeout": ORIGIN_READ_TIMEOUT_SECONDS},
    }, NO_VALUE)


def distribution_parts() -> DistributionParts:
    return DistributionParts(
        origins=[_api_origin(), _large_requests_origin()],
        default_behaviour={
            "TargetOriginId": API_ORIGIN_ID,
            # QField and the SDK never follow a redirect of a POST: HTTPS or nothing.
            "ViewerProtocolPolicy": "https-only",
            "AllowedMethods": ALL_METHODS,
            "CachedMethods": ["GET", "HEAD"],
            "CachePolicyId": CACHING_DISABLED,
            "OriginRequestPolicyId": ALL_VIEWER_EXCEPT_HOST_HEADER,
            # The function compresses its JSON answers itself (chalicelib/http/compression.py).
            "Compress": False,
            "FunctionAssociations": [{"EventType": "viewer-request",
                                      "FunctionARN": get_att(EDGE_FUNCTION, "FunctionARN")}],
        },
    )


def distribution_resources(parts: DistributionParts | None = None) -> Json:
    parts = parts or distribution_parts()
    config: Json = {
        "Enabled": True,
        "Comment": sub("${AWS::StackName}: the server's one public URL"),
        "HttpVersion": "http2and3",
        "IPV6Enabled": True,
        "PriceClass": "PriceClass_100",
        **domain.distribution_names(),
        "Origins": parts.origins,
        "DefaultCacheBehavior": parts.default_behaviour,
    }
    if parts.behaviours:
        config["CacheBehaviors"] = parts.behaviours
    if parts.root_object:
        config["DefaultRootObject"] = parts.root_object
    return {
        EDGE_FUNCTION: resource("AWS::CloudFront::Function", {
            "Name": sub("${AWS::StackName}-route-large-uploads"),
            "AutoPublish": True,
            "FunctionConfig": {"Comment": "Large file uploads to the large-request service",
                               "Runtime": "cloudfront-js-2.0"},
            "FunctionCode": if_(DEPLOY_JOB_WORKERS, routing_function_code(),
                                "function handler(event) { return event.request; }"),
        }),
        VPC_ORIGIN: resource("AWS::CloudFront::VpcOrigin", {
            "VpcOriginEndpointConfig": {
                "Name": sub("${AWS::StackName}-large-requests"),
                "Arn": get_att(LOAD_BALANCER, "LoadBalancerArn"),
                "HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only",
            },
        }, Condition=DEPLOY_JOB_WORKERS),
        DISTRIBUTION: resource("AWS::CloudFront::Distribution", {"DistributionConfig": config}),
    }


def distribution_domain_name() -> Json:
    """The distribution's own name (`d111111abcdef8.cloudfront.net`)."""
    return get_att(DISTRIBUTION, "DomainName")


def server_root_url() -> Json:
    """What QField calls the server URL (no trailing slash), under CloudFront's own name."""
    return sub(f"https://${{{DISTRIBUTION}.DomainName}}")


def api_url() -> Json:
    return sub(f"https://${{{DISTRIBUTION}.DomainName}}/api/v1/")
