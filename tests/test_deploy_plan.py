"""What `./dev deploy` decides before it changes anything: the update steps when tables gain several
indexes, the data upgrades an update needs, the job image's inputs and build, the parameters
CloudFormation would refuse, and what it tells an operator who lacks credentials, a region or a
container engine."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import index_steps, job_image
from infra.data_upgrades import FILL_DIRECTORY, RECOUNT, REORDER, tasks_for
from infra.deploy import argument_parser

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from app import app
    from infra.template import build_template

    return build_template(app)


def without_indexes(template: dict[str, Any], table: str, *names: str) -> dict[str, Any]:
    """The template as an older version had it: `table` without these indexes."""
    older = copy.deepcopy(template)
    properties = older["Resources"][table]["Properties"]
    properties["GlobalSecondaryIndexes"] = [index for index in properties["GlobalSecondaryIndexes"]
                                            if index["IndexName"] not in names]
    return older


def indexes(template: dict[str, Any], table: str) -> dict[str, Any]:
    return {index["IndexName"]: index
            for index in template["Resources"][table]["Properties"].get("GlobalSecondaryIndexes", [])}


def used_attributes(properties: dict[str, Any]) -> set[str]:
    keys = [*properties["KeySchema"]]
    for index in properties.get("GlobalSecondaryIndexes", []) + properties.get("LocalSecondaryIndexes", []):
        keys += index["KeySchema"]
    return {key["AttributeName"] for key in keys}


def test_two_new_indexes_of_a_table_are_added_one_per_update(template):
    older_projects = without_indexes(template, "ProjectTable", "by-owner-in-order", "public-in-order")
    deployed = without_indexes(older_projects, "CollaboratorTable", "by-collaborator-in-order")

    steps = index_steps.index_steps(deployed, template)

    assert len(steps) == 2 and steps[-1] == template
    previous = deployed
    for step in steps:
        for table in ("ProjectTable", "CollaboratorTable"):
            before, after = indexes(previous, table), indexes(step, table)
            assert len(set(before) ^ set(after)) <= 1, (table, set(before), set(after))
            properties = step["Resources"][table]["Properties"]
            # CloudFormation refuses attribute definitions that no key uses, and keys without one.
            defined = {d["AttributeName"] for d in properties["AttributeDefinitions"]}
            assert defined == used_attributes(properties)
        previous = step
    # Everything else is already the new template's in the first step.
    unchanged = {name for name in template["Resources"] if name not in ("ProjectTable", "CollaboratorTable")}
    assert all(steps[0]["Resources"][name] == template["Resources"][name] for name in unchanged)


def test_a_changed_index_is_deleted_then_added_and_a_removed_one_deleted(template):
    deployed = copy.deepcopy(template)
    project_indexes = deployed["Resources"]["ProjectTable"]["Properties"]["GlobalSecondaryIndexes"]
    project_indexes[0]["Projection"] = {"ProjectionType": "KEYS_ONLY"}
    changed = project_indexes[0]["IndexName"]
    retired = {"IndexName": "retired", "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
               "Projection": {"ProjectionType": "KEYS_ONLY"}}
    project_indexes.append(retired)

    steps = index_steps.index_steps(deployed, template)

    assert [set(indexes(step, "ProjectTable")) for step in steps] == [
        set(indexes(template, "ProjectTable")) - {changed} | {"retired"},
        set(indexes(template, "ProjectTable")) | {"retired"},
        set(indexes(template, "ProjectTable")),
    ]
    assert indexes(steps[1], "ProjectTable")[changed] == indexes(template, "ProjectTable")[changed]


def test_an_unchanged_schema_is_one_step(template):
    assert index_steps.index_steps(copy.deepcopy(template), template) == [template]


def test_an_intermediate_step_is_a_valid_template(template, tmp_path):
    from cfnlint.api import lint_file
    from cfnlint.config import ManualArgs

    deployed = without_indexes(template, "ProjectTable", "by-owner-in-order", "public-in-order")
    first = tmp_path / "step.json"
    first.write_text(json.dumps(index_steps.index_steps(deployed, template)[0]))

    assert [str(match) for match in lint_file(first, config=ManualArgs(regions=["eu-central-1"]))] == []


def test_an_update_runs_the_data_upgrades_its_schema_changes_need(template):
    without_counts = copy.deepcopy(template)
    del without_counts["Resources"]["ListCountTable"]

    def needed(deployed):
        return tasks_for(index_steps.added_indexes(deployed, template),
                         index_steps.added_tables(deployed, template))

    assert needed(copy.deepcopy(template)) == []
    assert needed(without_counts) == [RECOUNT]
    assert needed(without_indexes(template, "UserTable", "directory")) == [FILL_DIRECTORY]
    assert needed(without_indexes(template, "ProjectTable", "public-in-order")) == [REORDER]
    assert needed(without_indexes(template, "CollaboratorTable", "by-collaborator-in-order")) == [REORDER]


# --- The job image ----------------------------------------------------------------------------


def test_the_image_is_built_for_fargates_platform_from_what_the_dockerfile_copies():
    inputs = {path.relative_to(REPO).as_posix() for path in job_image.build_inputs()}
    command = job_image.build_command(job_image.Builder("docker"), "registry/qfc-jobs:tag")
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    sent = {line[1:] for line in ignored if line.startswith("!")}

    assert {"job_containers/Dockerfile", "job_containers/apt-packages.txt", "pyproject.toml",
            "chalicelib/__init__.py", "job_containers/worker.py"} <= inputs
    assert command[command.index("--platform") + 1] == "linux/amd64"
    # The build context holds every file the Dockerfile copies, and nothing else.
    assert "*" in ignored
    assert all(any(name == top or name.startswith(top + "/") for top in sent) for name in inputs)


def test_the_image_tag_is_the_digest_of_its_inputs_wherever_they_are(tmp_path, monkeypatch):
    for path in job_image.build_inputs():
        copy_of = tmp_path / path.relative_to(REPO)
        copy_of.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy_of)
    tag = job_image.image_tag()
    monkeypatch.setattr(job_image, "REPO", tmp_path)
    monkeypatch.setattr(job_image, "DOCKERFILE", tmp_path / "job_containers" / "Dockerfile")

    assert job_image.image_tag() == tag
    packages = tmp_path / "job_containers" / "apt-packages.txt"
    packages.write_text(packages.read_text() + "gdal-bin\n")
    assert job_image.image_tag() != tag


def test_without_a_container_engine_the_operator_is_told_what_to_do(monkeypatch, tmp_path):
    """This machine has Docker's client but no engine, which `docker info` tells."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = shutil.which("docker")
    if docker is not None:
        (bin_dir / "docker").symlink_to(docker)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")

    builder, why = job_image.find_builder()
    message = job_image.no_builder_message(why, None)

    assert builder is None
    assert "no `podman` command" in why
    assert ("`docker info` failed" if docker else "no `docker` command") in why
    assert "--job-image URI" in message and "https://docs.docker.com/get-docker/" in message
    assert "jobs wait in the queue" in message
    assert "keep their current image, repo/jobs:1" in job_image.no_builder_message(why, "repo/jobs:1")


# --- The command line -------------------------------------------------------------------------


def dev(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "dev"), *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=env if env is not None else os.environ.copy(), stdin=subprocess.DEVNULL,
                          check=False)


def test_dev_deploy_help_lists_every_option():
    shown = dev("deploy", "--help")
    options = set(re.findall(r"--[a-z-]+", shown.stdout))

    assert shown.returncode == 0
    assert {"--stack", "--region", "--yes", "--endpoint-url", "--delete", "--purge"} <= options
    assert {option for action in argument_parser()._actions for option in action.option_strings
            if option.startswith("--")} == options


def test_purge_goes_with_delete():
    refused = dev("deploy", "--purge")
    assert refused.returncode == 2 and "--purge goes with --delete" in refused.stderr


def no_aws(home: Path, **extra: str) -> dict[str, str]:
    """A shell with no AWS configuration at all."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "AWS_CONFIG_FILE": str(home / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"), "AWS_EC2_METADATA_DISABLED": "true", **extra}


def test_without_credentials_or_region_the_operator_is_told_what_to_do(tmp_path):
    no_region = dev("deploy", env=no_aws(tmp_path))
    no_credentials = dev("deploy", "--region", "eu-central-1", env=no_aws(tmp_path))

    assert no_region.returncode == 1 and "No AWS region: pass --region" in no_region.stderr
    assert no_credentials.returncode == 1
    assert "No AWS credentials: run `aws configure`" in no_credentials.stderr
    assert "Traceback" not in no_region.stderr + no_credentials.stderr


def test_chalice_deploy_refuses_to_build_a_function_without_the_stack(tmp_path):
    """`chalice deploy`, a Chalice user's reflex, can only make a function and an API: none of the
    tables, the bucket or the queue it needs. The project gives Chalice nothing to deploy, so it
    stops before any AWS call and `./dev deploy` is the one way (a Chalice configuration that
    deployed the whole stack would have to replace this test)."""
    refused = subprocess.run(
        [str(Path(sys.executable).parent / "chalice"), "deploy"], cwd=REPO, capture_output=True,
        text=True, timeout=120, stdin=subprocess.DEVNULL, check=False,
        # Credentials, and an endpoint where nothing listens: no call could succeed anyway.
        env=no_aws(tmp_path, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
                   AWS_DEFAULT_REGION="eu-central-1", AWS_ENDPOINT_URL="http://127.0.0.1:9"),
    )

    assert refused.returncode != 0
    assert "Unable to load the project config file" in refused.stderr
    assert not (REPO / ".chalice" / "deployed").exists()


def test_the_job_image_repository_is_the_stacks_own_and_keeps_ten_immutable_images():
    from moto import mock_aws

    from infra.target import Target

    with mock_aws():
        target = Target("eu-central-1")
        uri = job_image._ensure_repository(target, job_image.repository_name("QFC-Prod"))
        again = job_image._ensure_repository(target, job_image.repository_name("QFC-Prod"))
        ecr = target.client("ecr")
        (repository,) = ecr.describe_repositories(repositoryNames=["qfc-prod-jobs"])["repositories"]
        policy = json.loads(ecr.get_lifecycle_policy(repositoryName="qfc-prod-jobs")["lifecyclePolicyText"])

        assert uri == again == repository["repositoryUri"]
        assert repository["imageTagMutability"] == "IMMUTABLE"
        assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
        (rule,) = policy["rules"]
        selection = rule["selection"]
        assert (selection["countType"], selection["countNumber"]) == ("imageCountMoreThan", 10)
        assert not job_image._published(target, "qfc-prod-jobs", job_image.image_tag())


def test_a_domain_cloudfront_cannot_serve_is_refused_before_anything_is_built(tmp_path):
    """The template's rule (infra/domain.py) as `./dev deploy` applies it: before the Lambda package
    and the job image are built, with the values an update keeps from the deployed stack."""
    from moto import mock_aws

    from infra import cloudformation
    from infra.deploy import Deployment
    from infra.target import DeployError, Target
    from infra.template import build_template

    with mock_aws():
        target = Target("eu-central-1")
        deployment = Deployment(target, "qfc", echo=lambda line: None, ask=lambda question: True,
                                assume_yes=True)
        with pytest.raises(DeployError, match="DomainName needs CertificateArn outside us-east-1"):
            deployment.deploy(tmp_path / "build", None, ["DomainName=qfc.example.org"])
        assert target.client("s3").list_buckets()["Buckets"] == []  # no deployment bucket, no upload
        assert not (tmp_path / "build").exists()

    from app import app

    template = build_template(app)
    deployed = cloudformation.Stack("qfc", "UPDATE_COMPLETE", parameters={"DomainName": "qfc.example.org"})
    kept = cloudformation.effective_parameters(template, {"AlarmEmail": "ops@example.org"}, deployed)
    assert kept["DomainName"] == "qfc.example.org" and kept["CertificateArn"] == ""
    assert cloudformation.refusals(template, kept, "eu-central-1")
    assert not cloudformation.refusals(template, kept, "us-east-1")


def test_a_new_stack_gets_an_edge_secret_that_every_later_update_keeps(template):
    """`./dev deploy` draws the edge secret (infra/edge.py) once, for a stack that has none, and
    passes it on unread afterwards: CloudFormation shows it masked, and the pre-checks leave it be."""
    from infra import cloudformation
    from infra.deploy import edge_secret_to_set

    def refusals(given, stack):
        return cloudformation.refusals(template, cloudformation.effective_parameters(template, given, stack),
                                       "eu-central-1")

    created = edge_secret_to_set({}, None)["EdgeSecret"]
    assert len(created) >= 32 and created != edge_secret_to_set({}, None)["EdgeSecret"]
    assert not refusals({"EdgeSecret": created}, None)

    deployed = cloudformation.Stack("qfc", "UPDATE_COMPLETE", parameters={"EdgeSecret": "****"})
    assert edge_secret_to_set({}, deployed) == {}
    assert {"ParameterKey": "EdgeSecret", "UsePreviousValue": True} in cloudformation.parameter_list(
        template, {}, deployed)
    assert not refusals({}, deployed)

    # A stack deployed before the secret existed gets one at its next update.
    older = cloudformation.Stack("qfc", "UPDATE_COMPLETE", parameters={"DomainName": ""})
    assert len(edge_secret_to_set({}, older)["EdgeSecret"]) >= 32

    # The operator's own (a rotation) wins; a bad one is refused before anything is built,
    # without being printed.
    assert edge_secret_to_set({"EdgeSecret": "x" * 40}, deployed) == {}
    refused = refusals({"EdgeSecret": "too-short"}, deployed)
    assert refused and "too-short" not in " ".join(refused)
