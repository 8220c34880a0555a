"""Where a deployment goes: an AWS account and region, through one boto3 session, and for the
offline runs an endpoint (moto's server) that every AWS call goes to instead of AWS."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from .standin import is_moto


class DeployError(Exception):
    """A problem the operator can act on: printed as it is, without a traceback."""


@dataclass
class Target:
    region: str
    endpoint_url: str | None = None
    session: boto3.Session = field(default_factory=boto3.Session)

    @classmethod
    def resolve(cls, region: str | None, endpoint_url: str | None) -> Target:
        session = boto3.Session(region_name=region) if region else boto3.Session()
        if not session.region_name:
            raise DeployError("No AWS region: pass --region (e.g. --region eu-central-1) or set "
                              "AWS_DEFAULT_REGION, or configure one with `aws configure`.")
        return cls(session.region_name, endpoint_url, session)

    def client(self, service: str) -> Any:
        extra: dict[str, Any] = {}
        if service == "s3" and self.endpoint_url:
            extra["s3"] = {"addressing_style": "path"}  # a stand-in on an IP address has no bucket hosts
        return self.session.client(service, region_name=self.region, endpoint_url=self.endpoint_url,
                                   config=Config(retries={"mode": "standard"}, **extra))

    @cached_property
    def account_id(self) -> str:
        try:
            return self.client("sts").get_caller_identity()["Account"]
        except NoCredentialsError:
            raise DeployError("No AWS credentials: run `aws configure` (or set AWS_PROFILE, or "
                              "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) first.") from None
        except (ClientError, BotoCoreError, NoRegionError) as error:
            raise DeployError(f"The AWS credentials do not work here: {error}") from None

    def check_credentials(self) -> None:
        """Fails early, saying what to do, when there are no working credentials."""
        if not self.account_id:
            raise DeployError("The AWS credentials name no account.")

    @cached_property
    def is_moto(self) -> bool:
        return is_moto(self.endpoint_url)

    @property
    def where(self) -> str:
        return f"{self.endpoint_url} (moto)" if self.is_moto else (
            self.endpoint_url or f"AWS account {self.account_id}, {self.region}")
