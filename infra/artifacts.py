"""The deployment's own bucket: the Lambda packages and templates CloudFormation reads.

One bucket per account and region (as SAM's managed bucket), created on first use; each stack
keeps its files under its own name. Keys are the content's SHA-256, so a file already uploaded
is never uploaded again, and CloudFormation sees a new key exactly when the content changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from .target import Target

CHUNK = 1024 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Artifacts:
    target: Target
    bucket: str
    stack: str

    @classmethod
    def bucket_name(cls, target: Target) -> str:
        return f"qfc-deploy-{target.account_id}-{target.region}"

    @classmethod
    def ensure(cls, target: Target, stack: str) -> Artifacts:
        """The bucket, created private and encrypted if it does not exist yet."""
        s3 = target.client("s3")
        bucket = cls.bucket_name(target)
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
                raise
            location = {} if target.region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": target.region}}
            s3.create_bucket(Bucket=bucket, **location)
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True})
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        return cls(target, bucket, stack)

    def key(self, kind: str, digest: str, suffix: str) -> str:
        return f"{self.stack}/{kind}/{digest}{suffix}"

    def _exists(self, key: str) -> bool:
        try:
            self.target.client("s3").head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def upload_file(self, path: Path, kind: str) -> tuple[str, bool]:
        """The file's key, and whether it had to be uploaded."""
        key = self.key(kind, sha256_of(path), "".join(path.suffixes))
        if self._exists(key):
            return key, False
        self.target.client("s3").upload_file(str(path), self.bucket, key)
        return key, True

    def upload_bytes(self, content: bytes, kind: str, suffix: str) -> tuple[str, bool]:
        key = self.key(kind, hashlib.sha256(content).hexdigest(), suffix)
        if self._exists(key):
            return key, False
        self.target.client("s3").put_object(Bucket=self.bucket, Key=key, Body=content)
        return key, True

    def url(self, key: str) -> str:
        """How CloudFormation is told where a template is."""
        return f"https://{self.bucket}.s3.{self.target.region}.amazonaws.com/{key}"

    def remove_stack_files(self) -> int:
        """Deletes this stack's files; how many there were."""
        s3 = self.target.client("s3")
        removed = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                 Prefix=f"{self.stack}/"):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                removed += len(keys)
        return removed
