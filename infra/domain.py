"""An optional domain of the operator's own for the server (the DomainName parameter).

The domain names the CloudFront distribution, the server's one public URL (infra/edge.py), so
that QField's server URL is `https://<domain>` and large uploads and the web console take the
same way under it as under CloudFront's own name. API Gateway stays the distribution's origin
under its execute-api name: no viewer's Host reaches it (infra/edge.py).

CloudFront takes its certificates from ACM in us-east-1 only, and a stack cannot create a
certificate in another region than its own. Hence:

- `CertificateArn`, a certificate of the domain requested in us-east-1, serves any stack (its
  parameter's pattern refuses another region);
- without it, a stack in us-east-1 requests one, validated by DNS: with a Route 53 hosted zone
  (HostedZoneId) the validation record is created here, without one the stack waits while the
  operator adds the record shown in the ACM console;
- a stack elsewhere without it is refused before anything changes, by the template's rule
  (`rules`), which `./dev deploy` checks too before it builds anything.

With a hosted zone the domain's records (A and AAAA) are aliases of the distribution; without
one the domain needs a CNAME to the `ApiDomainTarget` output, the distribution's own name. The
outputs kept their names when the domain moved from API Gateway to the distribution.
"""

from __future__ import annotations

from .cfn import NO_VALUE, Json, and_, equals, if_, not_, ref, resource, sub
from .parameters import (
    CERTIFICATE,
    CERTIFICATE_REGION,
    CREATE_CERTIFICATE,
    CREATE_DNS_RECORD,
    DOMAIN_NAME,
    HAS_CERTIFICATE,
    HAS_DOMAIN,
    HAS_HOSTED_ZONE,
    HOSTED_ZONE,
)

DOMAIN_CERTIFICATE = "DomainCertificate"
# The A record kept its logical id when it moved from API Gateway to the distribution: an update
# changes the record in place, where a new one would collide with the old one's name.
DNS_RECORD = "ApiDomainRecord"
DNS_RECORD_IPV6 = "ApiDomainRecordIpv6"
CERTIFICATE_RULE = "DomainCertificateForCloudFront"
# Route 53's hosted zone of every CloudFront distribution, for alias records.
CLOUDFRONT_HOSTED_ZONE = "Z2FDTNDATAQYW2"
TLS_POLICY = "TLSv1.2_2021"

NO_CERTIFICATE_HERE = (
    f"DomainName needs CertificateArn outside {CERTIFICATE_REGION}: CloudFront takes certificates "
    f"from ACM in {CERTIFICATE_REGION} only, where a stack elsewhere cannot request one. Request "
    f"a certificate of the domain there (aws acm request-certificate --region {CERTIFICATE_REGION} "
    "--domain-name <domain> --validation-method DNS), add its validation record, and pass its ARN "
    "as CertificateArn (docs/deploy.md, 'Your own domain')."
)


def rules() -> Json:
    """The template's Rules: CloudFormation checks them before it changes anything."""
    return {
        CERTIFICATE_RULE: {
            "RuleCondition": and_(not_(equals(ref(DOMAIN_NAME), "")), equals(ref(CERTIFICATE), "")),
            "Assertions": [{"Assert": equals(ref("AWS::Region"), CERTIFICATE_REGION),
                            "AssertDescription": NO_CERTIFICATE_HERE}],
        },
    }


def _certificate() -> Json:
    return if_(HAS_CERTIFICATE, ref(CERTIFICATE), ref(DOMAIN_CERTIFICATE))


def distribution_names() -> Json:
    """The distribution's Aliases and ViewerCertificate: the domain and its certificate, or
    CloudFront's own name and certificate when there is no domain."""
    return {
        "Aliases": if_(HAS_DOMAIN, [ref(DOMAIN_NAME)], NO_VALUE),
        "ViewerCertificate": if_(
            HAS_DOMAIN,
            {"AcmCertificateArn": _certificate(), "SslSupportMethod": "sni-only",
             "MinimumProtocolVersion": TLS_POLICY},
            {"CloudFrontDefaultCertificate": True},
        ),
    }


def _alias_record(record_type: str, distribution_domain: Json) -> Json:
    return resource("AWS::Route53::RecordSet", {
        "HostedZoneId": ref(HOSTED_ZONE),
        "Name": ref(DOMAIN_NAME),
        "Type": record_type,
        "AliasTarget": {"DNSName": distribution_domain, "HostedZoneId": CLOUDFRONT_HOSTED_ZONE},
    }, Condition=CREATE_DNS_RECORD)


def domain_resources(distribution_domain: Json) -> Json:
    """The certificate a stack in us-east-1 requests, and the domain's records pointing at
    `distribution_domain` (the distribution's own name) when Route 53 holds the domain."""
    return {
        DOMAIN_CERTIFICATE: resource("AWS::CertificateManager::Certificate", {
            "DomainName": ref(DOMAIN_NAME),
            "ValidationMethod": "DNS",
            "DomainValidationOptions": if_(HAS_HOSTED_ZONE, [
                {"DomainName": ref(DOMAIN_NAME), "HostedZoneId": ref(HOSTED_ZONE)}], NO_VALUE),
        }, Condition=CREATE_CERTIFICATE),
        DNS_RECORD: _alias_record("A", distribution_domain),
        DNS_RECORD_IPV6: _alias_record("AAAA", distribution_domain),
    }


def server_url(default: Json) -> Json:
    """`https://<domain>` when there is one, else `default`."""
    return if_(HAS_DOMAIN, sub("https://${DomainName}"), default)


def api_url(default: Json) -> Json:
    return if_(HAS_DOMAIN, sub("https://${DomainName}/api/v1/"), default)


def target_output(distribution_domain: Json) -> Json:
    """Where the domain's DNS record must point (a CNAME) when Route 53 does not hold it."""
    return {"Description": "Point the domain here (CNAME) if its DNS is not in Route 53",
            "Value": distribution_domain, "Condition": HAS_DOMAIN}
