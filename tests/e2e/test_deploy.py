"""`./dev deploy` against moto's server, offline: moto's CloudFormation engine creates the stack
from the generated template; a second run changes nothing; the API, run from the deployed Lambda
package with the function's environment, and the job worker, with the task definition's, pass an
end-to-end smoke with moto's IAM enforcement on and only the credentials of their own roles; and
what each role must not do is refused.

What moto's CloudFormation does not create (alarms, scaling, the ACL, the bucket policy...) is
checked on the template instead (tests/test_infra.py, tests/test_operations.py): docs/deploy.md
lists it.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError
from pynamodb.attributes import Attribute
from pynamodb.indexes import GlobalSecondaryIndex

from chalicelib.models import ALL_MODELS
from tests import shared_data
from tests.e2e.deployed import (
    Deployed,
    MotoServer,
    as_boto3,
    run_deploy,
    start_api,
    start_large_requests,
    start_worker,
)
from tests.e2e.stack import BIN, CliResult
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e
# What the deployment is told about the job image: moto runs no container, so the worker runs from
# this checkout (what the image holds), with the environment and role the template gives it.
JOB_IMAGE = "123456789012.dkr.ecr.eu-central-1.amazonaws.com/qfc-ci-jobs:smoke"
BEE_FILES = ["bees.gpkg", "bumblebees.gpkg", "simple_bee_farming.qgs"]


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory) -> Path:
    """Shared by the deployments of the session: the Lambda package is built once."""
    return tmp_path_factory.mktemp("deploy-build")


@pytest.fixture(scope="module")
def plain_moto(tmp_path_factory):
    """moto's own server, unmodified, as someone else would start it."""
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


def password_in(output: str) -> str:
    (line,) = [line for line in output.splitlines() if "with the password:" in line]
    return line.rsplit(": ", 1)[1].strip()


@pytest.fixture(scope="module")
def first_and_second_runs(plain_moto, build_dir):
    first = run_deploy(plain_moto, "qfc-ci", build_dir)
    second = run_deploy(plain_moto, "qfc-ci", build_dir)
    return first, second


def test_deploy_creates_the_stack_then_changes_nothing(first_and_second_runs, plain_moto):
    first, second = first_and_second_runs

    assert first.returncode == 0, first.stdout + first.stderr
    assert "Stack qfc-ci: CREATE_COMPLETE" in first.stdout
    assert "Created the staff user 'admin' with the password:" in first.stdout
    assert second.returncode == 0, second.stdout + second.stderr
    assert "No changes: the stack is up to date." in second.stdout
    assert "uploaded already" in second.stdout and "built already" in second.stdout
    assert "with the password" not in second.stdout  # the first user exists already
    deployed = Deployed.read(plain_moto, "qfc-ci")
    for output in (first.stdout, second.stdout):
        assert f"ServerUrl: {deployed.outputs['ServerUrl']}" in output
        assert f"export QFIELDCLOUD_URL={deployed.outputs['ApiUrl']}" in output
    assert deployed.outputs["ServerUrl"].startswith("https://")
    assert deployed.outputs["ApiUrl"] == deployed.outputs["ServerUrl"] + "/api/v1/"
    # The web console is in the files bucket for CloudFront; unchanged, it is not uploaded again.
    assert re.search(r"Web console: (\d+) of its \1 files uploaded", first.stdout), first.stdout
    assert re.search(r"Web console: 0 of its \d+ files uploaded", second.stdout), second.stdout
    page = plain_moto.client("s3").get_object(Bucket=deployed.outputs["BucketName"], Key="console/index.html")
    assert page["ContentType"] == "text/html" and b'<div id="app">' in page["Body"].read()


def test_the_function_holds_the_edge_secret_the_first_run_drew(first_and_second_runs, plain_moto):
    """The secret CloudFront adds for the API (infra/edge.py) is drawn by the first run and kept by
    the second: moto compares parameters, so another secret would have been a change, and the
    second run changed nothing. (moto shows the NoEcho value; AWS shows ****.)"""
    first, second = first_and_second_runs
    deployed = Deployed.read(plain_moto, "qfc-ci")
    secret = deployed.function_environment()["QFC_EDGE_SECRET"]

    assert len(secret) >= 32 and deployed.parameters["EdgeSecret"] == secret
    assert "No changes: the stack is up to date." in second.stdout
    assert secret not in first.stdout + first.stderr + second.stdout + second.stderr


def index_definitions(model) -> dict[str, list[tuple[str, str]]]:
    """The model's global indexes and their keys, read from the model classes themselves."""
    found = {}
    for _, index in inspect.getmembers(model, lambda value: isinstance(value, GlobalSecondaryIndex)):
        attributes = inspect.getmembers(type(index), lambda value: isinstance(value, Attribute))
        found[index.Meta.index_name] = sorted((a.attr_name, "HASH" if a.is_hash_key else "RANGE")
                                              for _, a in attributes if a.is_hash_key or a.is_range_key)
    return found


def test_the_stack_holds_the_models_tables_a_versioned_bucket_and_the_queues(first_and_second_runs,
                                                                           plain_moto):
    deployed = Deployed.read(plain_moto, "qfc-ci")
    dynamodb = plain_moto.client("dynamodb")
    prefix = deployed.outputs["TablePrefix"]

    assert prefix == "qfc-ci-"
    for model in ALL_MODELS:
        table = dynamodb.describe_table(TableName=prefix + model.Meta.table)["Table"]
        keys = sorted((k["AttributeName"], k["KeyType"]) for k in table["KeySchema"])
        expected = sorted((a.attr_name, "HASH" if a.is_hash_key else "RANGE")
                          for a in model.get_attributes().values() if a.is_hash_key or a.is_range_key)
        indexes = {index["IndexName"]: sorted((k["AttributeName"], k["KeyType"]) for k in index["KeySchema"])
                   for index in table.get("GlobalSecondaryIndexes", [])}
        assert keys == expected, model.__name__
        assert indexes == index_definitions(model), model.__name__
    s3 = plain_moto.client("s3")
    assert s3.get_bucket_versioning(Bucket=deployed.outputs["BucketName"])["Status"] == "Enabled"
    sqs = plain_moto.client("sqs")
    jobs = sqs.get_queue_attributes(QueueUrl=deployed.outputs["JobsQueueUrl"], AttributeNames=["All"])
    dead_letters = sqs.get_queue_attributes(QueueUrl=deployed.outputs["JobsDeadLetterQueueUrl"],
                                            AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.loads(jobs["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dead_letters
    assert int(redrive["maxReceiveCount"]) == 3


def test_api_gateway_routes_every_route_of_the_app_to_the_function(first_and_second_runs, plain_moto):
    from app import app

    deployed = Deployed.read(plain_moto, "qfc-ci")
    apigateway = plain_moto.client("apigateway")
    resources = apigateway.get_resources(restApiId=deployed.resources["RestApi"], limit=500)["items"]
    routed = {(resource["path"], method): body.get("methodIntegration", {})
              for resource in resources for method, body in resource.get("resourceMethods", {}).items()}
    function_arn = plain_moto.client("lambda").get_function_configuration(
        FunctionName=deployed.resources["ApiFunction"])["FunctionArn"]

    assert {key for key in routed} == {(path, method) for path, methods in app.routes.items()
                                       for method in methods}
    assert {integration["type"] for integration in routed.values()} == {"AWS_PROXY"}
    assert all(function_arn in integration["uri"] for integration in routed.values())
    # Deployed (moto models no AWS::ApiGateway::Stage: tests/test_infra.py checks the stage).
    assert len(apigateway.get_deployments(restApiId=deployed.resources["RestApi"])["items"]) == 1


def test_delete_asks_first_keeps_the_data_and_purge_deletes_it(plain_moto, build_dir):
    for stack in ("qfc-kept", "qfc-purged"):
        created = run_deploy(plain_moto, stack, build_dir)
        assert created.returncode == 0, created.stdout + created.stderr
    kept, purged = Deployed.read(plain_moto, "qfc-kept"), Deployed.read(plain_moto, "qfc-purged")
    dynamodb, s3, cfn = (plain_moto.client(service) for service in ("dynamodb", "s3", "cloudformation"))

    unconfirmed = run_deploy(plain_moto, "qfc-kept", build_dir, "--delete", yes=False)
    assert unconfirmed.returncode == 1 and "run again with --yes" in unconfirmed.stderr
    assert cfn.describe_stacks(StackName="qfc-kept")["Stacks"]
    deleted = run_deploy(plain_moto, "qfc-kept", build_dir, "--delete")
    purge = run_deploy(plain_moto, "qfc-purged", build_dir, "--delete", "--purge")

    assert deleted.returncode == 0 and purge.returncode == 0, deleted.stderr + purge.stderr
    for stack in ("qfc-kept", "qfc-purged"):
        with pytest.raises(ClientError):
            cfn.describe_stacks(StackName=stack)
    tables = set(dynamodb.list_tables()["TableNames"])
    buckets = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert {kept.outputs["TablePrefix"] + model.Meta.table for model in ALL_MODELS} <= tables
    assert kept.outputs["BucketName"] in buckets
    assert not {name for name in tables if name.startswith(purged.outputs["TablePrefix"])}
    assert purged.outputs["BucketName"] not in buckets
    artifacts = purged.parameters["LambdaCodeS3Bucket"]
    assert not s3.list_objects_v2(Bucket=artifacts, Prefix="qfc-purged/").get("Contents")
    assert s3.list_objects_v2(Bucket=artifacts, Prefix="qfc-kept/")["Contents"]


# --- The deployed processes, with moto's IAM enforcement on ---------------------------------------


@pytest.fixture(scope="module")
def iam_moto(tmp_path_factory):
    server = MotoServer(tmp_path_factory.mktemp("iam-moto"), module="tests.e2e.iam_standin")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def enforced(iam_moto, build_dir, tmp_path_factory):
    """The stack deployed with job workers; the API and a worker running with their own roles'
    credentials; then IAM enforced on every request."""
    deployed_run = run_deploy(iam_moto, "qfc-iam", build_dir, "--job-image", JOB_IMAGE)
    assert deployed_run.returncode == 0, deployed_run.stdout + deployed_run.stderr
    deployed = Deployed.read(iam_moto, "qfc-iam")
    api_credentials = deployed.role_credentials("ApiFunctionRole")
    worker_credentials = deployed.role_credentials("JobTaskRole")
    service_credentials = deployed.role_credentials("LargeRequestsTaskRole")
    work = tmp_path_factory.mktemp("processes")
    package = deployed.unpack_package(work / "package")
    api_environment, worker_environment = deployed.function_environment(), deployed.worker_environment()
    service_environment = deployed.large_requests_environment()
    iam_moto.enforce_iam(True)
    try:
        api, url = start_api(deployed, package, api_environment, work, api_credentials)
        worker = start_worker(deployed, worker_environment, work, worker_credentials)
        service, service_url = start_large_requests(deployed, service_environment, work, service_credentials)
        yield {"deployed": deployed, "url": url, "password": password_in(deployed_run.stdout),
               "api": api_credentials, "worker": worker_credentials, "processes": (api, worker),
               "service": service, "service_url": service_url}
        service.stop()
        worker.stop()
        api.stop()
    finally:
        iam_moto.enforce_iam(False)


def cli(url: str, *args: str, token: str | None = None, cwd: Path | None = None) -> CliResult:
    import subprocess

    env = {"PATH": str(BIN), "HOME": str(cwd or Path.cwd()), "QFIELDCLOUD_URL": url,
           **({"QFIELDCLOUD_TOKEN": token} if token else {})}
    completed = subprocess.run([str(BIN / "qfieldcloud-cli"), *args], env=env, cwd=cwd, capture_output=True,
                               text=True, timeout=300, check=False, stdin=subprocess.DEVNULL)
    result = CliResult(completed.returncode, completed.stdout, completed.stderr)
    assert result.returncode == 0 and not result.http_error, result.output
    assert "Traceback" not in result.output, result.output
    return result


def wait_for_job(url: str, token: str, job_id: str) -> str:
    def done() -> str | None:
        status = cli(url, "--json", "job-status", job_id, token=token).json()["status"]
        return status if status in ("finished", "failed") else None

    return wait_until(done, f"job {job_id} is not done", interval=0.5)


def test_the_api_and_the_worker_pass_the_smoke_with_only_their_roles(enforced, tmp_path):
    url = enforced["url"]
    folder = tmp_path / "bees"
    folder.mkdir()
    for name in BEE_FILES:
        shutil.copyfile(shared_data.testdata() / "worker" / name, folder / name)
    api, worker = enforced["processes"]

    status = requests.get(url + "status/", timeout=30).json()
    token = cli(url, "--json", "login", "admin", enforced["password"]).json()["token"]
    project = cli(url, "--json", "create-project", "smoke", token=token).json()["id"]
    cli(url, "upload-files", project, str(folder), token=token)
    listed = {entry["name"]: entry for entry in cli(url, "--json", "list-files", project, token=token).json()}
    downloaded = tmp_path / "downloaded"
    cli(url, "download-files", project, str(downloaded), token=token)
    (processed,) = cli(url, "--json", "list-jobs", project, token=token).json()
    processing = wait_for_job(url, token, processed["id"])
    package = cli(url, "--json", "job-trigger", project, "package", token=token).json()
    packaging = wait_for_job(url, token, package["id"])

    assert (status["database"], status["storage"]) == ("ok", "ok")
    assert set(listed) == set(BEE_FILES)
    for name in BEE_FILES:
        assert (downloaded / name).read_bytes() == (folder / name).read_bytes(), name
    assert (processing, packaging) == ("finished", "finished"), api.output()[-3000:] + worker.output()[-5000:]
    assert "AccessDenied" not in api.output() + worker.output()


def test_the_large_request_service_stores_uploads_with_only_its_role(enforced, tmp_path):
    """What the CloudFront Function sends it (infra/edge.py): a file of two parts, and a QGIS
    project file, whose processing job it starts."""
    from qfieldcloud_sdk.utils import calc_etag

    url, service = enforced["url"], enforced["service_url"]
    token = cli(url, "--json", "login", "admin", enforced["password"]).json()["token"]
    project = cli(url, "--json", "create-project", "large", token=token).json()["id"]
    auth = {"Authorization": f"Token {token}"}
    content = bytes(range(256)) * (9 * 1024 * 1024 // 256)  # two 8 MiB parts
    stored = requests.post(f"{service}/api/v1/files/{project}/big.gpkg/", headers=auth, timeout=120,
                           files={"file": ("big.gpkg", content)})
    qgs = (shared_data.testdata() / "worker" / "simple_bee_farming.qgs").read_bytes()
    project_file = requests.post(f"{service}/api/v1/files/{project}/simple_bee_farming.qgs/", headers=auth,
                                 timeout=120, files={"file": ("simple_bee_farming.qgs", qgs)})
    listed = {entry["name"]: entry for entry in cli(url, "--json", "list-files", project, token=token).json()}
    jobs = cli(url, "--json", "list-jobs", project, token=token).json()

    assert stored.status_code == 201, stored.text
    assert project_file.status_code == 201, project_file.text
    (tmp_path / "big.gpkg").write_bytes(content)
    assert listed["big.gpkg"]["md5sum"] == calc_etag(str(tmp_path / "big.gpkg"))
    assert listed["big.gpkg"]["md5sum"].endswith("-2") and listed["big.gpkg"]["size"] == len(content)
    assert [job["type"] for job in jobs] == ["process_projectfile"]
    assert "AccessDenied" not in enforced["service"].output(), enforced["service"].output()[-3000:]


def test_the_api_role_cannot_delete_the_bucket(enforced, iam_moto):
    deployed = enforced["deployed"]
    s3 = iam_moto.client("s3", as_boto3(enforced["api"]))

    with pytest.raises(ClientError) as refused:
        s3.delete_bucket(Bucket=deployed.outputs["BucketName"])

    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert s3.head_bucket(Bucket=deployed.outputs["BucketName"])  # the same credentials, allowed


def test_the_worker_role_cannot_read_the_login_tokens(enforced, iam_moto):
    deployed = enforced["deployed"]
    tokens = deployed.outputs["TablePrefix"] + "auth-tokens"
    key = {"token_hash": {"S": "no token has this hash"}}
    worker = iam_moto.client("dynamodb", as_boto3(enforced["worker"]))
    api = iam_moto.client("dynamodb", as_boto3(enforced["api"]))

    with pytest.raises(ClientError) as refused:
        worker.get_item(TableName=tokens, Key=key)

    # moto answers DynamoDB's refusal in the XML of its other services: only the status and the
    # message are DynamoDB's (AWS's code would be AccessDeniedException).
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "not authorized to perform: dynamodb:GetItem" in str(refused.value)
    assert "Item" not in api.get_item(TableName=tokens, Key=key)  # the API's role may read it
