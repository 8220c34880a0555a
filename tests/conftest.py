"""Shared fixtures. The test environment is set before any test runs; the project reads its
settings on first use, and `override_settings` changes them for one test."""

from __future__ import annotations

import os
import secrets
import warnings
from contextlib import ExitStack

os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "QFC_TABLE_PREFIX": "test-",
    "QFC_BUCKET": "qfc-test-files",
    "QFC_PASSWORD_HASH_CHEAP": "1",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "QFC_PUBLIC_URL": "http://testserver",
    # Background tasks (a project's purge) run before the request answers: tests see their end.
    "QFC_BACKGROUND_TASKS": "inline",
    # What the in-process edge adds for the API to believe the viewer's address (`api` below), as
    # the local stack draws one at each start.
    "QFC_EDGE_SECRET": secrets.token_urlsafe(32),
})
os.environ.pop("QFC_AWS_ENDPOINT_URL", None)
os.environ.pop("QFC_MAX_DIRECT_UPLOAD_BYTES", None)

# As ./dev does for its other commands (see there): Debian's python3-openssl, older than the
# cryptography pip installs, warns that it touches DSA when botocore imports it (with moto, next).
warnings.filterwarnings("ignore", "DSA is deprecated", module="OpenSSL.crypto")

import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from devstack.moto_atomic import make_dynamodb_atomic  # noqa: E402
from devstack.moto_multipart import complete_multipart_uploads_without_a_copy  # noqa: E402
from tests.client import ApiClient  # noqa: E402

make_dynamodb_atomic()
complete_multipart_uploads_without_a_copy()

PASSWORD = "correct horse battery"


def pytest_configure(config):
    """A test fails when a thread it started dies of an exception, or an exception is raised where
    Python can only print it (a __del__, a callback): pytest would otherwise only warn. (Here
    rather than in pyproject.toml, whose every change makes ./dev reinstall the dependencies.)"""
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnhandledThreadExceptionWarning")
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture
def aws():
    """A fresh, empty AWS (moto, in process) with the app's tables, bucket and queues."""
    from devstack.resources import ensure_all

    with mock_aws():
        ensure_all()
        yield


@pytest.fixture
def api(aws) -> ApiClient:
    from app import app, handler
    from chalicelib.config import settings
    from devstack.edge import Edge
    from devstack.gateway import ApiGateway

    gateway = ApiGateway(app, handler)
    return ApiClient(gateway, front=Edge(gateway, settings.edge_secret))


@pytest.fixture
def users(api):
    """Factory: `users("alice")` creates a user and returns an ApiClient logged in as them."""
    from chalicelib.services import accounts

    def make(username: str, **kwargs) -> ApiClient:
        accounts.create_user(username, PASSWORD, email=f"{username}@example.com", **kwargs)
        return api.login(username, PASSWORD)

    return make


@pytest.fixture
def alice(users) -> ApiClient:
    return users("alice")


@pytest.fixture
def pid(alice) -> str:
    """The id of alice's project `survey`."""
    return alice.create_project("survey")["id"]


@pytest.fixture
def override_settings():
    """`override_settings(keep_versions=3)`: changed settings until the end of the test."""
    from chalicelib import config

    with ExitStack() as stack:
        yield lambda **changes: stack.enter_context(config.override(**changes))


@pytest.fixture
def testdata_copy(tmp_path):
    """`testdata_copy("app/delta")`: a writable copy of a folder of the shared test data."""
    import shutil

    from tests import shared_data

    def copy(relative: str):
        target = tmp_path / "testdata" / relative
        if not target.exists():
            shutil.copytree(shared_data.testdata() / relative, target, copy_function=shutil.copyfile)
        return target

    return copy
