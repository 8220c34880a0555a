"""boto3 clients, built in one place so that the endpoint override applies everywhere.

A client is made on first use and kept for the region and endpoint it was made for, so a process
whose settings change (tests, a worker pointed at the local stack) gets matching clients. boto3
itself is imported then too: DynamoDB goes through PynamoDB (botocore), so a cold start that
serves a request needing no S3 or SQS never loads boto3 and its transfer manager.
"""

from __future__ import annotations

from functools import cache

from botocore.config import Config

from chalicelib.config import settings


@cache
def _client(service: str, region: str, endpoint_url: str | None):
    extra: dict[str, object] = {}
    if service == "s3":
        # Path-style addressing keeps presigned URLs valid against a local endpoint on an IP address.
        # The payload is not hashed into the signature: over HTTPS botocore already skips that for
        # bodies that carry a checksum, and the bodies we send carry one (S3 verifies it); over
        # the local stack's plain HTTP it would hash every upload once more for nothing.
        extra = {"signature_version": "s3v4",
                 "s3": {"addressing_style": "path" if endpoint_url else "auto",
                        "payload_signing_enabled": False}}
    import boto3

    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(retries={"mode": "standard"}, **extra),
    )


def _current(service: str):
    return _client(service, settings.region, settings.aws_endpoint_url)


def s3():
    return _current("s3")


def s3_presigner():
    """The S3 client that signs URLs for clients: they may reach the endpoint at another address
    than this process does (the local stack's public address)."""
    return _client("s3", settings.region, settings.aws_public_endpoint_url or settings.aws_endpoint_url)


def sqs():
    return _current("sqs")


def ses():
    return _current("ses")
