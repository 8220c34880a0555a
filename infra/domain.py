"""An optional domain of the operator's own for the server (the DomainName parameter).

API Gateway serves the API under the domain, its root mapped to the stage, so that QField's server
URL is `https://<domain>` and the API is at `https://<domain>/api/v1/`. The certificate is the
one named by CertificateArn, or else one that ACM issues once it is validated by DNS: with a Route
53 hosted zone (HostedZoneId) the validation record and the domain's own record are created here;
without one, the stack waits while the operator adds the validation record shown in the ACM
console, then the domain needs a CNAME to the `ApiDomainTarget` output.

When CloudFront becomes the one public URL, the domain moves to the distribution (whose
certificate must be in us-east-1); the outputs keep their names.
"""

from __future__ import annotations

from .api import REST_API, STAGE, STAGE_NAME
from .cfn import NO_VALUE, Json, get_att, if_, ref, resource, sub
from .parameters import (
    CERTIFICATE,
    CREATE_CERTIFICATE,
    CREATE_DNS_RECORD,
    DOMAIN_NAME,
    HAS_CERTIFICATE,
    HAS_DOMAIN,
    HAS_HOSTED_ZONE,
    HOSTED_ZONE,
)

DOMAIN_CERTIFICATE = "DomainCertificate"
API_DOMAIN = "ApiDomainName"
BASE_PATH_MAPPING = "ApiDomainMapping"
DNS_RECORD = "ApiDomainRecord"


def domain_resources() -> Json:
    return {
        DOMAIN_CERTIFICATE: resource("AWS::CertificateManager::Certificate", {
            "DomainName": ref(DOMAIN_NAME),
            "ValidationMethod": "DNS",
            "DomainValidationOptions": if_(HAS_HOSTED_ZONE, [
                {"DomainName": ref(DOMAIN_NAME), "HostedZoneId": ref(HOSTED_ZONE)}], NO_VALUE),
        }, Condition=CREATE_CERTIFICATE),
        API_DOMAIN: resource("AWS::ApiGateway::DomainName", {
            "DomainName": ref(DOMAIN_NAME),
            "RegionalCertificateArn": if_(HAS_CERTIFICATE, ref(CERTIFICATE), ref(DOMAIN_CERTIFICATE)),
            "EndpointConfiguration": {"Types": ["REGIONAL"]},
            "SecurityPolicy": "TLS_1_2",
        }, Condition=HAS_DOMAIN),
        BASE_PATH_MAPPING: resource("AWS::ApiGateway::BasePathMapping", {
            "DomainName": ref(API_DOMAIN),
            "RestApiId": ref(REST_API),
            "Stage": STAGE_NAME,
        }, Condition=HAS_DOMAIN, DependsOn=STAGE),
        DNS_RECORD: resource("AWS::Route53::RecordSet", {
            "HostedZoneId": ref(HOSTED_ZONE),
            "Name": ref(DOMAIN_NAME),
            "Type": "A",
            "AliasTarget": {"DNSName": get_att(API_DOMAIN, "RegionalDomainName"),
                            "HostedZoneId": get_att(API_DOMAIN, "RegionalHostedZoneId")},
        }, Condition=CREATE_DNS_RECORD),
    }


def server_url(default: Json) -> Json:
    """`https://<domain>` when there is one, else `default`."""
    return if_(HAS_DOMAIN, sub("https://${DomainName}"), default)


def api_url(default: Json) -> Json:
    return if_(HAS_DOMAIN, sub("https://${DomainName}/api/v1/"), default)


def target_output() -> Json:
    """Where the domain's DNS record must point (a CNAME) when Route 53 does not hold it."""
    return {"Description": "Point the domain here (CNAME) if its DNS is not in Route 53",
            "Value": get_att(API_DOMAIN, "RegionalDomainName"), "Condition": HAS_DOMAIN}
