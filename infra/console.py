"""The web console on AWS: its built files (console/dist/, made by scripts/build_console.sh) in the
files bucket under `console/`, served by the CloudFront distribution that serves the API, so
that the browser sees one origin (no CORS for the API, the token never crosses origins).

`upload_console` is the deploy's step (`./dev deploy` calls it after the stack is up). The other
functions are the pieces the distribution needs, for the template that declares it:

- `origin_access_control_resources()`: CloudFront signs its requests to the bucket;
- `console_origin(oac)`: the bucket's `console/` folder as an origin;
- `console_cache_behavior(headers_policy)`: the distribution's default behavior (everything the API's
  behaviors do not take), with the console's security headers;
- `security_headers_policy_resources()`: those headers (console/security-headers.json, the same
  file the local stack serves them from);
- `bucket_policy_statement(distribution)`: a statement for the files bucket's policy letting that
  distribution, and nothing else, read `console/*` (the bucket's other keys stay private).

`served_with_console(parts)` fits them into the distribution (infra/template.py), and
`resources()` declares the first and fourth.
docs/console.md shows how they fit together.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import subprocess
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from .cfn import Json, get_att, ref, resource, sub
from .edge import DistributionParts
from .storage import BUCKET

REPO = Path(__file__).resolve().parent.parent
DIST = REPO / "console" / "dist"
HEADERS_FILE = REPO / "console" / "security-headers.json"
PREFIX = "console/"
ORIGIN_ID = "console"
ORIGIN_ACCESS_CONTROL = "ConsoleOriginAccessControl"
HEADERS_POLICY = "ConsoleSecurityHeaders"
# Assets are named after their content's hash: browsers and CloudFront may keep them for a year.
# The page itself is asked for anew, so that a deploy is seen at the next load.
ASSET_CACHE = "public, max-age=31536000, immutable"
PAGE_CACHE = "no-cache"
# CloudFront's managed cache policy "CachingOptimized" (gzip and brotli, origin's Cache-Control).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
# The app's paths (tests/test_console_hosting.py checks that every route matches one): the API,
# and its documents and their pages outside /api/. Everything else is the console's.
API_PATHS = ("/api/*", "/swagger*", "/docs*")


def console_files(dist: Path = DIST) -> list[Path]:
    """The files to upload, assets first: a page is never online before the assets it names."""
    files = [path for path in dist.rglob("*") if path.is_file() and not path.name.startswith(".")]
    return sorted(files, key=lambda path: (path.parent.name != "assets", str(path)))


def build_console() -> Path:
    """Builds the console if its files changed since the last build (scripts/build_console.sh);
    where the built files are."""
    done = subprocess.run([str(REPO / "scripts" / "build_console.sh")], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building the web console failed:\n{done.stderr.strip()}")
    return DIST


def upload_console(s3: Any, bucket: str, dist: Path = DIST) -> tuple[int, int]:
    """Uploads the built console to `bucket` under `console/`: (files uploaded, files in all).
    A file S3 holds already with the same content is left alone (the bucket is versioned: an
    unchanged deploy adds nothing). Assets of earlier deploys stay: a browser holding an older
    page still loads the parts it asks for."""
    if not (dist / "index.html").is_file():
        raise FileNotFoundError(f"{dist} holds no built console (scripts/build_console.sh makes it)")
    files = console_files(dist)
    uploaded = 0
    for path in files:
        key, body = PREFIX + path.relative_to(dist).as_posix(), path.read_bytes()
        if _etag(s3, bucket, key) == f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"':
            continue
        s3.put_object(Bucket=bucket, Key=key, Body=body,
                      ContentType=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                      CacheControl=ASSET_CACHE if path.parent.name == "assets" else PAGE_CACHE)
        uploaded += 1
    return uploaded, len(files)


def _etag(s3: Any, bucket: str, key: str) -> str | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)["ETag"]
    except ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def origin_access_control_resources() -> Json:
    return {
        ORIGIN_ACCESS_CONTROL: resource("AWS::CloudFront::OriginAccessControl", {
            "OriginAccessControlConfig": {
                "Name": sub("${AWS::StackName}-console"),
                "OriginAccessControlOriginType": "s3",
                "SigningBehavior": "always",
                "SigningProtocol": "sigv4",
            },
        }),
    }


def console_origin() -> Json:
    """The bucket's `console/` folder as an origin of the distribution."""
    return {
        "Id": ORIGIN_ID,
        "DomainName": get_att(BUCKET, "RegionalDomainName"),
        "OriginPath": "/" + PREFIX.rstrip("/"),
        "S3OriginConfig": {"OriginAccessIdentity": ""},
        "OriginAccessControlId": get_att(ORIGIN_ACCESS_CONTROL, "Id"),
    }


def console_cache_behavior() -> Json:
    """The distribution's DefaultCacheBehavior: the console at `/`, with its headers."""
    return {
        "TargetOriginId": ORIGIN_ID,
        "ViewerProtocolPolicy": "redirect-to-https",
        "AllowedMethods": ["GET", "HEAD"],
        "CachedMethods": ["GET", "HEAD"],
        "Compress": True,
        "CachePolicyId": CACHING_OPTIMIZED,
        "ResponseHeadersPolicyId": ref(HEADERS_POLICY),
    }


def security_headers() -> dict[str, str]:
    """The console's headers, with `{storage}` still in place of the S3 endpoint's origin."""
    raw = json.loads(HEADERS_FILE.read_text())
    return {name: value for name, value in raw.items() if not name.startswith("_")}


def security_headers_policy_resources() -> Json:
    """The console's security headers as CloudFront adds them. `{storage}` becomes the files
    bucket's endpoints, which presigned URLs name (uploads PUT their parts there): the regional
    one, and the global one boto3 names in us-east-1."""
    headers = security_headers()
    storage = f"https://${{{BUCKET}.RegionalDomainName}} https://${{{BUCKET}.DomainName}}"
    policy = headers.pop("Content-Security-Policy").replace("{storage}", storage)
    frame_options = headers.pop("X-Frame-Options")
    referrer = headers.pop("Referrer-Policy")
    headers.pop("X-Content-Type-Options")
    if headers:  # a header CloudFront's security headers do not cover goes in CustomHeaders
        raise ValueError(f"console/security-headers.json: not mapped for CloudFront: {sorted(headers)}")
    return {
        HEADERS_POLICY: resource("AWS::CloudFront::ResponseHeadersPolicy", {
            "ResponseHeadersPolicyConfig": {
                "Name": sub("${AWS::StackName}-console-headers"),
                "SecurityHeadersConfig": {
                    "ContentSecurityPolicy": {"ContentSecurityPolicy": sub(policy), "Override": True},
                    "ContentTypeOptions": {"Override": True},
                    "FrameOptions": {"FrameOption": frame_options, "Override": True},
                    "ReferrerPolicy": {"ReferrerPolicy": referrer, "Override": True},
                    "StrictTransportSecurity": {"AccessControlMaxAgeSec": 31536000, "Override": True},
                },
            },
        }),
    }


def bucket_policy_statement(distribution: str) -> Json:
    """For the files bucket's policy: the distribution `distribution` (a logical id) may read the
    console's files, and only those."""
    return {
        "Sid": "CloudFrontReadsTheConsole",
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": "s3:GetObject",
        "Resource": sub("arn:${AWS::Partition}:s3:::${" + BUCKET + "}/" + PREFIX + "*"),
        "Condition": {"StringEquals": {"AWS:SourceArn": sub(
            "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${" + distribution + "}")}},
    }


def resources() -> Json:
    return {**origin_access_control_resources(), **security_headers_policy_resources()}


def served_with_console(parts: DistributionParts) -> DistributionParts:
    """The distribution's parts with the console at `/` (its default behaviour, `index.html` the
    root object) and the API's behaviour kept for the API's paths."""
    api = parts.default_behaviour
    return DistributionParts(
        origins=[*parts.origins, console_origin()],
        default_behaviour=console_cache_behavior(),
        behaviours=[*parts.behaviours, *({"PathPattern": path, **api} for path in API_PATHS)],
        root_object="index.html",
    )
