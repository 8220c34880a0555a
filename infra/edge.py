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

API Gateway sees CloudFront's servers as its callers, so the API learns the viewer's address
from CloudFront (chalicelib/http/client_address.py): the same function writes it
(`event.viewer.ip`) in `X-Qfc-Viewer-Address`, replacing any a viewer sent, and the API origin
adds the stack's `EdgeSecret` as `X-Qfc-Edge-Secret` (an origin custom header, which replaces a
viewer's of that name), without which the API does not believe it. The address travels in a
header of ours, not in CloudFront's `CloudFront-Viewer-Address`: that one needs an origin request
policy that adds it, and a policy of our own cannot add CloudFront's headers, leave out the
viewer's Host and keep Authorization at once (`allExcept` passes viewer headers only,
`allViewerAndWhitelistCloudFront` passes the Host too, Authorization cannot be listed by name);
a header the function sets is a viewer header, which `AllViewerExceptHostHeader` passes on.

`distribution_parts` returns the origins and behaviours, so another part of the template (the
console's S3 origin) can add its own before the distribution is made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from chalicelib.http import limits
from chalicelib.http.client_address import EDGE_SECRET_HEADER, VIEWER_ADDRESS_HEADER

from . import domain
from .api import REST_API, STAGE_NAME
from .cfn import NO_VALUE, Json, get_att, if_, ref, resource, sub
from .large_requests import LOAD_BALANCER
from .parameters import DEPLOY_JOB_WORKERS, EDGE_SECRET, HAS_EDGE_SECRET

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

// Whether the stack has a large-request service (DeployJobWorkers).
var ROUTE_LARGE_UPLOADS = %(route_large_uploads)s;
// chalicelib/http/limits.py, takes_large_path: the same rule, the same numbers.
var LARGE_BODY_BYTES = %(large_body_bytes)d;
var LARGE_UPLOAD_METHOD = %(method)s;
var LARGE_UPLOAD_PATH = new RegExp(%(path)s);
// chalicelib/http/client_address.py: where the API reads the viewer's address.
var VIEWER_ADDRESS_HEADER = %(viewer_address)s;

function handler(event) {
    var request = event.request;
    // Set on every request, so that whatever a viewer sent under this name never reaches an origin.
    request.headers[VIEWER_ADDRESS_HEADER] = { value: event.viewer.ip };
    if (!ROUTE_LARGE_UPLOADS || request.method !== LARGE_UPLOAD_METHOD
            || !LARGE_UPLOAD_PATH.test(request.uri)) {
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


def routing_function_code(route_large_uploads: bool = True) -> str:
    """The CloudFront Function's JavaScript (cloudfront-js-2.0), with limits.py's numbers; without
    the large-request service (`route_large_uploads` false) everything goes to API Gateway."""
    return ROUTING_FUNCTION % {
        "route_large_uploads": json.dumps(route_large_uploads),
        "viewer_address": json.dumps(VIEWER_ADDRESS_HEADER.lower()),  # the function's names are lower case
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
        "OriginCustomHeaders": if_(HAS_EDGE_SECRET,
                                   [{"HeaderName": EDGE_SECRET_HEADER, "HeaderValue": ref(EDGE_SECRET)}],
                                   NO_VALUE),
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
            "FunctionConfig": {"Comment": "Large file uploads to the large-request service; the viewer's "
                                          "address for the API",
                               "Runtime": "cloudfront-js-2.0"},
            "FunctionCode": if_(DEPLOY_JOB_WORKERS, routing_function_code(),
                                routing_function_code(route_large_uploads=False)),
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
