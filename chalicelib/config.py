"""Settings, read once from the environment.

The same code runs locally (against moto's server, `QFC_AWS_ENDPOINT_URL` set) and in AWS (unset).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

MIB = 1024 * 1024
GIB = 1024 * MIB


def _optional_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


@dataclass
class Settings:
    region: str
    aws_endpoint_url: str | None
    table_prefix: str
    bucket: str
    token_expiration_hours: int
    login_failure_limit: int
    login_lockout_seconds: int
    # Above this many bytes the direct multipart POST answers 413; None means no limit (local stack).
    max_direct_upload_bytes: int | None
    default_storage_quota_bytes: int
    keep_versions: int
    presigned_url_seconds: int
    password_hash_cheap: bool


def load_settings() -> Settings:
    env = os.environ.get
    return Settings(
        region=env("AWS_DEFAULT_REGION") or env("AWS_REGION") or "us-east-1",
        aws_endpoint_url=env("QFC_AWS_ENDPOINT_URL") or None,
        table_prefix=env("QFC_TABLE_PREFIX", "qfc-"),
        bucket=env("QFC_BUCKET", "qfc-files"),
        token_expiration_hours=int(env("QFC_TOKEN_EXPIRATION_HOURS", "720")),
        login_failure_limit=int(env("QFC_LOGIN_FAILURE_LIMIT", "5")),
        login_lockout_seconds=int(env("QFC_LOGIN_LOCKOUT_SECONDS", "1800")),
        max_direct_upload_bytes=_optional_int("QFC_MAX_DIRECT_UPLOAD_BYTES"),
        default_storage_quota_bytes=int(env("QFC_DEFAULT_STORAGE_QUOTA_BYTES", str(10 * GIB))),
        keep_versions=int(env("QFC_KEEP_VERSIONS", "10")),
        presigned_url_seconds=int(env("QFC_PRESIGNED_URL_SECONDS", "600")),
        # Tests hash thousands of passwords; production keeps argon2's default cost.
        password_hash_cheap=env("QFC_PASSWORD_HASH_CHEAP", "") == "1",
    )


settings = load_settings()
