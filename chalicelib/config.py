"""Settings: one object, read from the environment on first use (never at import), and
replaceable in tests with `override(...)`.

The same code runs locally (against moto's server, `QFC_AWS_ENDPOINT_URL` set) and in AWS (unset).
Every module reads `settings.<name>`; `settings` stands for the current `Settings`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024
GIB = 1024 * MIB


def _optional_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


@dataclass(frozen=True)
class Settings:
    region: str
    aws_endpoint_url: str | None
    # Where clients elsewhere reach that endpoint, for presigned URLs (the local stack's public
    # address when phones use it); the same as `aws_endpoint_url` when unset.
    aws_public_endpoint_url: str | None
    # The server root clients use (`https://qfc.example.org`), for the absolute URLs the API
    # writes (pagination links). Unset on AWS: API Gateway's own domain for the request is used.
    public_url: str | None
    table_prefix: str
    bucket: str
    jobs_queue_url: str | None
    jobs_dead_letter_queue_url: str | None
    token_expiration_hours: int
    # Login attempts allowed per account and source address, and per account from all addresses
    # together (0: no account-wide ceiling), in a fixed window of `login_lockout_seconds`.
    login_failure_limit: int
    login_failure_limit_per_account: int
    login_lockout_seconds: int
    # What the edge (CloudFront; locally devstack/edge.py) adds to the requests it passes on, so
    # that the API believes the viewer's address it reports (chalicelib/http/client_address.py).
    # None: no request is believed, every address is API Gateway's `sourceIp`.
    edge_secret: str | None
    # Above this many bytes the direct multipart POST answers 413; None means no limit (local stack).
    max_direct_upload_bytes: int | None
    default_storage_quota_bytes: int
    # How far past the quota QField's uploads may go, in percent of the quota (docs/security.md).
    quota_grace_percent: int
    # Plan limits of every account that sets none of its own; -1 means no limit.
    max_premium_collaborators_per_private_project: int
    max_organization_members: int
    keep_versions: int
    presigned_url_seconds: int
    password_hash_cheap: bool
    # How background tasks run: `auto`, `lambda`, `thread` or `inline` (chalicelib.adapters.background).
    background_tasks: str
    # The job worker: how long a job may run and how much memory its QGIS process may use, how
    # long a worker's hold on a project lasts unless renewed, how long to wait for messages, and
    # after how long a job whose project is busy is offered again.
    job_timeout_seconds: int
    job_memory_mb: int
    # process_projectfile only reads a project: it gets less time than a package or deltas.
    process_projectfile_timeout_seconds: int
    # How long a job's network requests may stall on slow or silent servers, all together
    # (job_containers/egress.py), and the private hosts (names, addresses, networks) its layers
    # may reach besides public ones, e.g. an on-premises PostGIS (docs/security.md).
    job_network_seconds: int
    job_allowed_private_hosts: tuple[str, ...]
    job_lease_seconds: int
    job_poll_seconds: int
    job_busy_retry_seconds: int
    # Jobs waiting or running at once that users may ask for (POST jobs/, deltas/apply/), per
    # project and per owner of projects; -1 means no limit (docs/jobs.md says why these defaults).
    max_active_jobs_per_project: int
    max_active_jobs_per_owner: int
    # Account self-service (docs/api.md, "Accounts"): the From address of the server's mails
    # (None: no mail is sent, so password reset by e-mail is off), the folder the local stack
    # writes them to instead of sending them with SES, how long a reset link is valid, and
    # whether anyone may sign up.
    mail_sender: str | None
    mail_folder: str | None
    password_reset_minutes: int
    signup_enabled: bool


def from_environment() -> Settings:
    env = os.environ.get
    return Settings(
        region=env("AWS_DEFAULT_REGION") or env("AWS_REGION") or "us-east-1",
        aws_endpoint_url=env("QFC_AWS_ENDPOINT_URL") or None,
        aws_public_endpoint_url=env("QFC_AWS_PUBLIC_ENDPOINT_URL") or None,
        public_url=env("QFC_PUBLIC_URL") or None,
        table_prefix=env("QFC_TABLE_PREFIX", "qfc-"),
        bucket=env("QFC_BUCKET", "qfc-files"),
        jobs_queue_url=env("QFC_JOBS_QUEUE_URL") or None,
        jobs_dead_letter_queue_url=env("QFC_JOBS_DLQ_URL") or None,
        token_expiration_hours=int(env("QFC_TOKEN_EXPIRATION_HOURS", "720")),
        login_failure_limit=int(env("QFC_LOGIN_FAILURE_LIMIT", "5")),
        login_failure_limit_per_account=int(env("QFC_LOGIN_FAILURE_LIMIT_PER_ACCOUNT", "50")),
        login_lockout_seconds=int(env("QFC_LOGIN_LOCKOUT_SECONDS", "1800")),
        edge_secret=env("QFC_EDGE_SECRET", "").strip() or None,
        max_direct_upload_bytes=_optional_int("QFC_MAX_DIRECT_UPLOAD_BYTES"),
        default_storage_quota_bytes=int(env("QFC_DEFAULT_STORAGE_QUOTA_BYTES", str(10 * GIB))),
        quota_grace_percent=int(env("QFC_QUOTA_GRACE_PERCENT", "10")),
        max_premium_collaborators_per_private_project=int(
            env("QFC_MAX_COLLABORATORS_PER_PRIVATE_PROJECT", "-1")),
        max_organization_members=int(env("QFC_MAX_ORGANIZATION_MEMBERS", "-1")),
        keep_versions=int(env("QFC_KEEP_VERSIONS", "10")),
        presigned_url_seconds=int(env("QFC_PRESIGNED_URL_SECONDS", "600")),
        # Tests hash thousands of passwords; production keeps argon2's default cost.
        password_hash_cheap=env("QFC_PASSWORD_HASH_CHEAP", "") == "1",
        background_tasks=env("QFC_BACKGROUND_TASKS", "auto"),
        job_timeout_seconds=int(env("QFC_JOB_TIMEOUT_SECONDS", "600")),
        job_memory_mb=int(env("QFC_JOB_MEMORY_MB", "3000")),
        process_projectfile_timeout_seconds=int(env("QFC_PROCESS_PROJECTFILE_TIMEOUT_SECONDS", "300")),
        job_network_seconds=int(env("QFC_JOB_NETWORK_SECONDS", "30")),
        job_allowed_private_hosts=tuple(
            host.strip() for host in env("QFC_JOB_ALLOWED_PRIVATE_HOSTS", "").split(",") if host.strip()),
        job_lease_seconds=int(env("QFC_JOB_LEASE_SECONDS", "60")),
        job_poll_seconds=int(env("QFC_JOB_POLL_SECONDS", "20")),
        job_busy_retry_seconds=int(env("QFC_JOB_BUSY_RETRY_SECONDS", "10")),
        max_active_jobs_per_project=int(env("QFC_MAX_ACTIVE_JOBS_PER_PROJECT", "10")),
        max_active_jobs_per_owner=int(env("QFC_MAX_ACTIVE_JOBS_PER_OWNER", "50")),
        mail_sender=env("QFC_MAIL_SENDER", "").strip() or None,
        mail_folder=env("QFC_MAIL_FOLDER", "").strip() or None,
        password_reset_minutes=int(env("QFC_PASSWORD_RESET_MINUTES", "60")),
        signup_enabled=env("QFC_SIGNUP", "") == "1",
    )


_current: Settings | None = None


def current() -> Settings:
    global _current
    if _current is None:
        _current = from_environment()
    return _current


def reload() -> Settings:
    """Read the environment again (after it changed, e.g. when a process points at the local stack)."""
    global _current
    _current = from_environment()
    return _current


@contextmanager
def override(**changes: Any) -> Iterator[Settings]:
    """Settings with some values replaced, for the duration of a `with` block (tests)."""
    global _current
    previous = current()
    _current = dataclasses.replace(previous, **changes)
    try:
        yield _current
    finally:
        _current = previous


class _CurrentSettings:
    """`settings.bucket` reads the current settings; nothing is read before the first access."""

    def __getattr__(self, name: str) -> Any:
        return getattr(current(), name)


settings = _CurrentSettings()
