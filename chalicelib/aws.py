"""boto3 clients, built in one place so that the endpoint override applies everywhere."""

from __future__ import annotations

from functools import cache

import boto3
from botocore.config import Config

from .config import settings


def _client(service: str, **config: object):
    return boto3.client(
        service,
        region_name=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(retries={"mode": "standard"}, **config),
    )


@cache
def s3():
    # Path-style addressing keeps presigned URLs valid against a local endpoint on an IP address.
    addressing = "path" if settings.aws_endpoint_url else "auto"
    return _client("s3", signature_version="s3v4", s3={"addressing_style": addressing})


@cache
def dynamodb():
    return _client("dynamodb")


@cache
def sqs():
    return _client("sqs")
