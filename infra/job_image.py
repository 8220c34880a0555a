"""The QGIS job image: built with Docker or Podman where one runs, published to the stack's own
ECR repository, and tagged with the digest of what it is built from, so that an image already
published is neither built nor pushed again.

Where neither runs, nothing is built: the deployment says what to do (install one, or name an
image built elsewhere with `--job-image`), and keeps the workers' current image, if any. The
image is built for linux/amd64 (what the task definition runs) on any machine, an ARM laptop
included (the builder then emulates it).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from .target import DeployError, Target

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "job_containers" / "Dockerfile"
PLATFORM = "linux/amd64"
TOOLS = ("docker", "podman")
# Images kept in the repository: the current one and a few to go back to.
KEEP_IMAGES = 10
LIFECYCLE_POLICY = {"rules": [{
    "rulePriority": 1, "description": "keep the latest images",
    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_IMAGES},
    "action": {"type": "expire"},
}]}

NO_BUILDER = """\
The QGIS job workers run a container image, which is built with Docker or Podman; neither
answers on this machine ({why}). {consequence}
To deploy the workers, either
  - install Docker (https://docs.docker.com/get-docker/) or Podman (https://podman.io/),
    start it, and run ./dev deploy again: the image is then built and published by itself; or
  - build it on a machine that has one and publish it to a registry the account can pull from
    (its ECR, or a public registry), then pass it: ./dev deploy --job-image URI
      docker build --platform linux/amd64 -f job_containers/Dockerfile -t URI . && docker push URI"""


@dataclass(frozen=True)
class Builder:
    tool: str


def find_builder() -> tuple[Builder | None, str]:
    """A container tool whose engine answers, or None and why not."""
    reasons = []
    for tool in TOOLS:
        path = shutil.which(tool)
        if path is None:
            reasons.append(f"no `{tool}` command")
            continue
        answered = subprocess.run([path, "info"], capture_output=True, text=True, timeout=60, check=False)
        if answered.returncode == 0:
            return Builder(path), ""
        last_line = (answered.stderr or answered.stdout).strip().splitlines()[-1:]
        reasons.append(f"`{tool} info` failed: {' '.join(last_line)}")
    return None, "; ".join(reasons)


def build_inputs() -> list[Path]:
    """The Dockerfile and every file it copies into the image."""
    sources = []
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^COPY\s+(.+)\s+\S+$", line)
        if match:
            sources += match.group(1).split()
    files = [DOCKERFILE]
    for source in sources:
        path = REPO / source
        files += sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) \
            if path.is_dir() else [path]
    return files


def image_tag() -> str:
    """The digest of what the image is built from."""
    digest = hashlib.sha256(PLATFORM.encode())
    for path in build_inputs():
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:20]


def repository_name(stack: str) -> str:
    return f"{stack.lower()}-jobs"


def build_command(builder: Builder, image: str) -> list[str]:
    return [builder.tool, "build", "--platform", PLATFORM, "-f", str(DOCKERFILE), "-t", image, str(REPO)]


def _ensure_repository(target: Target, name: str) -> str:
    ecr = target.client("ecr")
    try:
        (repository,) = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "RepositoryNotFoundException":
            raise
        repository = ecr.create_repository(
            repositoryName=name, imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True})["repository"]
        ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(LIFECYCLE_POLICY))
    return repository["repositoryUri"]


def _published(target: Target, repository: str, tag: str) -> bool:
    try:
        target.client("ecr").describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ClientError as error:
        if error.response["Error"]["Code"] == "ImageNotFoundException":
            return False
        raise
    return True


def _run(command: list[str], **kwargs) -> None:
    completed = subprocess.run(command, check=False, **kwargs)
    if completed.returncode != 0:
        raise DeployError(f"`{' '.join(command[:2])}` failed (exit code {completed.returncode}); "
                          "see its output above.")


def publish(target: Target, stack: str, builder: Builder, echo) -> str:
    """Builds and pushes the image unless the repository has it already; its URI."""
    import base64

    repository = repository_name(stack)
    uri = f"{_ensure_repository(target, repository)}:{image_tag()}"
    if _published(target, repository, uri.rsplit(":", 1)[1]):
        echo(f"Job image {uri}: published already.")
        return uri
    echo(f"Building the job image {uri} for {PLATFORM} (the first build takes several minutes)...")
    _run(build_command(builder, uri))
    size = subprocess.run([builder.tool, "image", "inspect", "--format", "{{.Size}}", uri],
                          capture_output=True, text=True, check=False).stdout.strip()
    if size.isdigit():
        echo(f"Job image size: {int(size) / 1e6:.0f} MB unpacked (docs/deploy.md: what it means for"
             " a worker's start).")
    token = target.client("ecr").get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
    _run([builder.tool, "login", "--username", user, "--password-stdin", token["proxyEndpoint"]],
         input=password.encode(), capture_output=True)
    echo("Pushing the job image...")
    _run([builder.tool, "push", uri])
    return uri


def no_builder_message(why: str, current_image: str | None) -> str:
    consequence = (f"The workers keep their current image, {current_image}." if current_image else
                   "The API is deployed without them: jobs wait in the queue (up to 4 days) until "
                   "workers are deployed.")
    return NO_BUILDER.format(why=why, consequence=consequence)
