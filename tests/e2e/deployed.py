"""A stack deployed by `./dev deploy` to moto's server, and its processes run the way AWS runs them:
the API from the very Lambda package deployed, with the function's environment; the job worker
with the task definition's environment; each with credentials of its own role if asked."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

from tests.e2e.stack import ROOT, free_port
from tests.waiting import wait_until

REGION = "eu-central-1"
# What an operator's shell would hold: credentials and a region, nothing of the project's.
OPERATOR_ENVIRONMENT = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION}
BASE_ENVIRONMENT = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}


@dataclass
class MotoServer:
    """moto's server in a process of its own; `module` is moto's or tests.e2e.iam_standin."""

    logs: Path
    module: str = "moto.server"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.logs / f"moto-{self.port}.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**BASE_ENVIRONMENT, "PYTHONPATH": str(ROOT)},
        )
        wait_until_up(f"{self.url}/moto-api/config", self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    def enforce_iam(self, on: bool) -> None:
        """moto's own switch: after it, every request is authenticated and authorized."""
        answer = requests.post(f"{self.url}/moto-api/reset-auth", data="0" if on else "inf", timeout=10)
        answer.raise_for_status()

    def client(self, service: str, credentials: dict[str, str] | None = None) -> Any:
        credentials = credentials or {"aws_access_key_id": "x", "aws_secret_access_key": "x"}
        return boto3.client(service, region_name=REGION, endpoint_url=self.url, **credentials)


def wait_until_up(url: str, process: subprocess.Popen) -> None:
    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with code {process.returncode}")
        try:
            requests.get(url, timeout=10)
        except requests.ConnectionError:
            return False
        return True

    wait_until(answers, f"nothing answered at {url}", interval=0.2)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_deploy(moto: MotoServer, stack: str, build_dir: Path, *extra: str,
               yes: bool = True) -> subprocess.CompletedProcess:
    """`./dev deploy` as the acceptance runs it, against a moto server someone else started."""
    return subprocess.run(
        [str(ROOT / "dev"), "deploy", "--stack", stack, "--endpoint-url", moto.url,
         *(["--yes"] if yes else []), "--build-dir", str(build_dir), *extra],
        cwd=ROOT, env={**BASE_ENVIRONMENT, **OPERATOR_ENVIRONMENT}, capture_output=True, text=True,
        timeout=900, stdin=subprocess.DEVNULL, check=False,
    )


@dataclass
class Deployed:
    """What the stack says about itself: outputs, resources, and its processes' environments."""

    moto: MotoServer
    stack: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    resources: dict[str, str]  # physical ids by logical id

    @classmethod
    def read(cls, moto: MotoServer, stack: str) -> Deployed:
        cfn = moto.client("cloudformation")
        (described,) = cfn.describe_stacks(StackName=stack)["Stacks"]
        resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
        return cls(
            moto, stack,
            outputs={o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])},
            parameters={p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]},
            resources={r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources
                       if r.get("LogicalResourceId") and r.get("PhysicalResourceId")},
        )

    def function_environment(self) -> dict[str, str]:
        configuration = self.moto.client("lambda").get_function_configuration(
            FunctionName=self.resources["ApiFunction"])
        return configuration["Environment"]["Variables"]

    def worker_environment(self) -> dict[str, str]:
        definition = self.moto.client("ecs").describe_task_definition(
            taskDefinition=self.resources["JobTaskDefinition"])["taskDefinition"]
        (container,) = definition["containerDefinitions"]
        return {variable["name"]: variable["value"] for variable in container["environment"]}

    def large_requests_environment(self) -> dict[str, str]:
        definition = self.moto.client("ecs").describe_task_definition(
            taskDefinition=self.resources["LargeRequestsTaskDefinition"])["taskDefinition"]
        (container,) = definition["containerDefinitions"]
        return {variable["name"]: variable["value"] for variable in container["environment"]}

    def unpack_package(self, into: Path) -> Path:
        """The Lambda package the stack's function was deployed from, unzipped."""
        body = self.moto.client("s3").get_object(Bucket=self.parameters["LambdaCodeS3Bucket"],
                                                 Key=self.parameters["LambdaCodeS3Key"])["Body"].read()
        zipfile.ZipFile(io.BytesIO(body)).extractall(into)
        return into

    def role_credentials(self, logical_id: str) -> dict[str, str]:
        """Credentials of the role the template gives a process (as Lambda and ECS hand them out)."""
        role = self.moto.client("iam").get_role(RoleName=self.resources[logical_id])["Role"]
        granted = self.moto.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName=logical_id)
        credentials = granted["Credentials"]
        return {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
                "AWS_SESSION_TOKEN": credentials["SessionToken"]}


def as_boto3(credentials: dict[str, str]) -> dict[str, str]:
    return {"aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": credentials["AWS_SESSION_TOKEN"]}


def _shim(folder: Path) -> Path:
    """The local gateway and its HTTP server, linked into a folder of their own."""
    import waitress

    folder.mkdir(parents=True, exist_ok=True)
    for name, source in (("devstack", ROOT / "devstack"), ("waitress", Path(waitress.__file__).parent)):
        if not (folder / name).exists():
            (folder / name).symlink_to(source)
    return folder


@dataclass
class Process:
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        stop(self.process)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_api(deployed: Deployed, package: Path, environment: dict[str, str], work: Path,
              credentials: dict[str, str]) -> tuple[Process, str]:
    """The deployed function behind the local gateway: its unpacked package, its `environment`,
    `credentials`; its AWS is moto's server (Lambda's would be AWS itself). The URL clients use."""
    port = free_port()
    environment = {**BASE_ENVIRONMENT, **environment, **credentials,
                   "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
                   "QFC_AWS_ENDPOINT_URL": deployed.moto.url}
    log = work / "api.log"
    process = subprocess.Popen(
        [sys.executable, "-S", "-E", str(ROOT / "tests" / "e2e" / "lambda_host.py"), str(package),
         str(_shim(work / "shim")), str(port)],
        cwd=work, env=environment, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/v1/"
    wait_until_up(url + "status/", process)
    return Process(process, log), url


def start_large_requests(deployed: Deployed, environment: dict[str, str], work: Path,
                         credentials: dict[str, str]) -> tuple[Process, str]:
    """The large-request service (the image's other command, from this checkout) with its task
    definition's `environment` and `credentials`; its URL (CloudFront's origin on AWS)."""
    port = free_port()
    environment = {**BASE_ENVIRONMENT, **environment, **credentials,
                   "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
                   "QFC_AWS_ENDPOINT_URL": deployed.moto.url,
                   "QFC_LARGE_REQUESTS_HOST": "127.0.0.1", "QFC_LARGE_REQUESTS_PORT": str(port)}
    log = work / "large-requests.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "large_requests"], cwd=ROOT, env=environment,
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url + "/health", process)
    return Process(process, log), url


def start_worker(deployed: Deployed, environment: dict[str, str], work: Path,
                 credentials: dict[str, str]) -> Process:
    """The job worker (the image's entry point, from this checkout) with the task definition's
    `environment` and `credentials`."""
    environment = {**BASE_ENVIRONMENT, **environment, **credentials,
                   "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
                   "QFC_AWS_ENDPOINT_URL": deployed.moto.url, "QT_QPA_PLATFORM": "offscreen"}
    log = work / "worker.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "job_containers.worker"], cwd=ROOT, env=environment,
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    return Process(process, log)
