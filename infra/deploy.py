"""Deploys or updates everything in one command: `./dev deploy` (`python -m infra.deploy`).

0. The parameters are checked as CloudFormation will check them (each one's allowed values, the
   template's Rules), so that a refused value fails before anything is built.
1. The API's Lambda package (built once per version of its inputs) and the template, generated
   from the code, go to the deployment bucket under the digest of their content.
2. The QGIS job image is built and published where Docker or Podman runs (infra/job_image.py).
3. The stack is created or updated through a change set: what will change is shown and, unless
   `--yes`, confirmed; each resource's progress is printed. When tables gain several indexes,
   the update is made in steps (infra/index_steps.py).
4. The data upgrades the update needs run by themselves, and a new stack gets its first staff
   user, whose password is printed once (infra/data_upgrades.py).
5. The web console is built and its changed files uploaded to the files bucket under `console/`
   (infra/console.py).
6. The server URL for QField, the API URL for qfieldcloud-cli and how to log in are printed.

Running it again with nothing changed changes nothing. `--delete` removes the stack and keeps
the tables and the files bucket, unless `--purge`. `--endpoint-url` sends every AWS call to
another endpoint (moto's server, for the offline test: infra/standin.py).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from . import cloudformation as cfn_ops
from . import console
from . import job_image as images
from .artifacts import Artifacts
from .index_steps import added_indexes, added_tables, index_steps
from .package import cached_package
from .parameters import EDGE_SECRET, PUBLIC_URL
from .standin import apply_skipped_properties, rest_api_as_resources, without_cloudfront
from .target import DeployError, Target

REPO = Path(__file__).resolve().parent.parent
DEFAULT_STACK = "qfc"
# The parameters this command sets itself.
CODE_BUCKET, CODE_KEY, JOB_IMAGE = "LambdaCodeS3Bucket", "LambdaCodeS3Key", "JobImageUri"
INDEX_POLL_SECONDS = 10

Echo = Callable[[str], None]
Ask = Callable[[str], bool]


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="./dev deploy",
        description="Deploy or update the whole server on AWS in one command (docs/deploy.md). "
                    "Uses the AWS credentials of the environment (aws configure, AWS_PROFILE).",
    )
    parser.add_argument("--stack", default=DEFAULT_STACK,
                        help=f"CloudFormation stack name; tables and queues are named after it "
                             f"(default: {DEFAULT_STACK})")
    parser.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or "
                                         "your AWS configuration)")
    parser.add_argument("--yes", action="store_true",
                        help="do not ask before changing the stack (and with --purge, before deleting data)")
    parser.add_argument("--endpoint-url", metavar="URL",
                        help="send every AWS call to this endpoint instead of AWS (moto's server, offline)")
    parser.add_argument("--job-image", metavar="URI",
                        help="run this QGIS job image instead of building one (an image built elsewhere)")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="set a template parameter (repeatable), e.g. JobWorkerCount=1, "
                             "AlarmEmail=ops@example.org, DomainName=qfc.example.org; "
                             "others keep their deployed value")
    parser.add_argument("--delete", action="store_true",
                        help="delete the stack; its tables and files bucket are kept")
    parser.add_argument("--purge", action="store_true",
                        help="with --delete: delete the tables, the files bucket with every file "
                             "version, the job images and the deployment files too")
    parser.add_argument("--build-dir", type=Path, default=REPO / "build", metavar="DIR",
                        help="where the Lambda package is built (default: build/)")
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argument_parser()
    args = parser.parse_args(argv)
    if args.purge and not args.delete:
        parser.error("--purge goes with --delete")
    return args


def given_parameters(pairs: list[str], template: dict[str, Any]) -> dict[str, str]:
    given = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals:
            raise DeployError(f"--parameter {pair}: write NAME=VALUE")
        if name not in template["Parameters"]:
            raise DeployError(f"--parameter {name}: the template has no such parameter; it has "
                              + ", ".join(sorted(template["Parameters"])))
        if name in (CODE_BUCKET, CODE_KEY):
            raise DeployError(f"--parameter {name}: set by the deployment itself")
        given[name] = value
    return given


def edge_secret_to_set(given: dict[str, str], stack: cfn_ops.Stack | None) -> dict[str, str]:
    """A new edge secret (infra/edge.py) for a stack that has none yet: one being created, or one
    deployed before the parameter existed. A stack that has one keeps it: CloudFormation shows it
    masked, and the update passes it on unread (`UsePreviousValue`). `--parameter EdgeSecret=...`
    sets another (docs/deploy.md, rotating it)."""
    if EDGE_SECRET in given or (stack is not None and EDGE_SECRET in stack.parameters):
        return {}
    return {EDGE_SECRET: secrets.token_urlsafe(32)}


@dataclass
class Deployment:
    target: Target
    stack_name: str
    echo: Echo
    ask: Ask
    assume_yes: bool

    @property
    def cfn(self) -> Any:
        return self.target.client("cloudformation")

    def confirm(self, question: str) -> None:
        if self.assume_yes:
            return
        if not self.ask(question):
            raise DeployError("Nothing was changed.")

    # --- deploy ----------------------------------------------------------------------------

    def deploy(self, build_dir: Path, job_image: str | None, parameter_pairs: list[str]) -> None:
        # Imported here: generating the template imports the whole app, which `--help` does not need.
        from .build import generate

        self.echo(f"Deploying stack {self.stack_name} to {self.target.where}.")
        template = generate()
        if self.target.is_moto:
            template = without_cloudfront(rest_api_as_resources(template))
        given = given_parameters(parameter_pairs, template)
        stack = self._stack_ready_for_change()
        given.update(edge_secret_to_set(given, stack))
        # Before anything is built: what CloudFormation would refuse only after the builds.
        refused = cfn_ops.refusals(template, cfn_ops.effective_parameters(template, given, stack),
                                   self.target.region)
        if refused:
            raise DeployError("CloudFormation would refuse these parameters:\n  " + "\n  ".join(refused))
        artifacts = Artifacts.ensure(self.target, self.stack_name)
        given.update(self._lambda_code(artifacts, build_dir))
        image = self._job_image(job_image, stack)
        if image:
            given[JOB_IMAGE] = image
        deployed = cfn_ops.deployed_template(self.cfn, self.stack_name) if stack else {"Resources": {}}
        steps = index_steps(deployed, template)
        if len(steps) > 1:
            self.echo(f"A table gains more than one index: CloudFormation adds one per table and "
                      f"update, so this update is made in {len(steps)} steps.")
        changed = False
        for number, step in enumerate(steps, start=1):
            last = number == len(steps)
            # Until the last step the deployed code keeps running, with the indexes it uses.
            changed |= self._apply(artifacts, step, given if last else {}, stack,
                                   f"step {number}/{len(steps)}" if len(steps) > 1 else "")
            stack = cfn_ops.describe(self.cfn, self.stack_name)
        assert stack is not None
        public_url = stack.outputs["ServerUrl"]
        # Known only once the stack exists: the function cannot name the distribution that names
        # its API. The links the API mails (password reset) and answers use it. Against moto there
        # is no distribution: ServerUrl is API Gateway's, which the function names by itself.
        if not self.target.is_moto and stack.parameters.get(PUBLIC_URL) != public_url:
            changed |= self._apply(artifacts, template, {**given, PUBLIC_URL: public_url}, stack,
                                   "the server's public URL")
            stack = cfn_ops.describe(self.cfn, self.stack_name)
            assert stack is not None
        created = not deployed["Resources"]
        self._wait_for_indexes(stack.outputs)
        password = self._upgrade_data(stack.outputs, created, added_indexes(deployed, template),
                                      added_tables(deployed, template))
        self._console(stack.outputs["BucketName"])
        self._summary(stack, changed, password, image or stack.parameters.get(JOB_IMAGE))

    def _console(self, bucket: str) -> None:
        self.echo("Building the web console (when its files changed) and uploading it...")
        try:
            dist = console.build_console()
            uploaded, total = console.upload_console(self.target.client("s3"), bucket, dist)
        except (RuntimeError, FileNotFoundError) as error:
            raise DeployError(str(error)) from None
        self.echo(f"Web console: {uploaded} of its {total} files uploaded, the others unchanged "
                  f"(s3://{bucket}/{console.PREFIX}; served by CloudFront: docs/console.md).")

    def _stack_ready_for_change(self) -> cfn_ops.Stack | None:
        stack = cfn_ops.describe(self.cfn, self.stack_name)
        if stack is not None and stack.in_progress:
            self.echo(f"The stack is busy ({stack.status}); waiting for it...")
            cfn_ops.wait(self.cfn, self.stack_name, None, lambda line: None)
            stack = cfn_ops.describe(self.cfn, self.stack_name)
        if stack is not None and stack.status in cfn_ops.FAILED_CREATION:
            raise DeployError(
                f"The stack's first creation failed ({stack.status}) and CloudFormation cannot "
                f"update it. It holds no data yet: remove it with `./dev deploy --stack "
                f"{self.stack_name} --delete --purge`, then deploy again.")
        return stack

    def _lambda_code(self, artifacts: Artifacts, build_dir: Path) -> dict[str, str]:
        self.echo("Building the API's Lambda package (once per version of the code)...")
        try:
            package, built = cached_package(build_dir)
        except ValueError as error:
            raise DeployError(str(error)) from None
        key, uploaded = artifacts.upload_file(package, "lambda")
        self.echo(f"Lambda package {package.name}: {'built' if built else 'built already'}, "
                  f"{'uploaded' if uploaded else 'uploaded already'} (s3://{artifacts.bucket}/{key}).")
        return {CODE_BUCKET: artifacts.bucket, CODE_KEY: key}

    def _job_image(self, given: str | None, stack: cfn_ops.Stack | None) -> str | None:
        current = (stack.parameters.get(JOB_IMAGE) if stack else None) or None
        if given:
            return given
        if self.target.endpoint_url:
            self.echo("Job image: none is built for a stand-in endpoint (no registry to push to); "
                      "pass --job-image URI to deploy the workers with an image of your own."
                      + (f" The workers keep {current}." if current else ""))
            return None
        builder, why = images.find_builder()
        if builder is None:
            self.echo(images.no_builder_message(why, current))
            return None
        return images.publish(self.target, self.stack_name, builder, self.echo)

    def _apply(self, artifacts: Artifacts, template: dict[str, Any], given: dict[str, str],
               stack: cfn_ops.Stack | None, step: str) -> bool:
        """One change set, shown, confirmed and applied; whether it changed anything."""
        content = json.dumps(template, separators=(",", ":")).encode()
        key, _ = artifacts.upload_bytes(content, "templates", ".json")
        url = artifacts.url(key)
        parameters = cfn_ops.parameter_list(template, given, stack)
        creates = stack is None
        change_set = cfn_ops.create_change_set(self.cfn, self.stack_name, url, parameters, creates)
        label = f" ({step})" if step else ""
        if change_set is None:
            self.echo(f"No changes{label}: the stack is up to date.")
            return False
        self.echo(f"Changes{label}:")
        for line in change_set.describe():
            self.echo(line)
        self.confirm(f"{'Create' if creates else 'Update'} the stack {self.stack_name} with these "
                     f"{len(change_set.changes)} changes?")
        since = time.time()
        if self.target.is_moto:
            status = cfn_ops.apply_directly(self.cfn, change_set, url, parameters, self.echo)
        else:
            status = cfn_ops.execute(self.cfn, change_set, self.echo)
        if status not in cfn_ops.SUCCEEDED:
            reasons = cfn_ops.failure_reasons(self.cfn, self.stack_name)
            raise DeployError(f"The stack ended {status} (after {time.time() - since:.0f} s). What "
                              "failed:\n  " + "\n  ".join(reasons or ["(no reason given)"]))
        if self.target.is_moto:
            set_by_hand = apply_skipped_properties(self.target, self.stack_name, template)
            self.echo("Set what moto's CloudFormation leaves out (infra/standin.py): "
                      + "; ".join(set_by_hand))
        return True

    def _wait_for_indexes(self, outputs: dict[str, str]) -> None:
        """New indexes are built in the background: the upgrade tasks and the code query them."""
        from chalicelib.models import ALL_MODELS

        dynamodb = self.target.client("dynamodb")
        for model in ALL_MODELS:
            name = outputs["TablePrefix"] + model.Meta.table
            while True:
                table = dynamodb.describe_table(TableName=name)["Table"]
                building = [index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])
                            if index.get("IndexStatus", "ACTIVE") != "ACTIVE"]
                if not building:
                    break
                self.echo(f"Waiting for the index {', '.join(building)} of {name}...")
                time.sleep(INDEX_POLL_SECONDS)

    def _upgrade_data(self, outputs: dict[str, str], created: bool, indexes: dict[str, set[str]],
                      tables: set[str]) -> str | None:
        from .data_upgrades import create_first_admin, point_the_app_at, tasks_for

        point_the_app_at(self.target, outputs)
        if not created:
            for task in tasks_for(indexes, tables):
                self.echo(f"Upgrading the data ({task.name})...")
                self.echo(task.done.format(count=task.run()))
        return create_first_admin() if created else None

    def _summary(self, stack: cfn_ops.Stack, changed: bool, password: str | None,
                 image: str | None) -> None:
        from .data_upgrades import ADMIN_USERNAME

        outputs = stack.outputs
        lines = [
            "",
            f"Stack {self.stack_name}: {stack.status}" + ("" if changed else " (nothing changed)"),
            f"ServerUrl: {outputs['ServerUrl']}",
            "           the server URL to enter in QField",
            f"ApiUrl:    {outputs['ApiUrl']}",
            "           QFIELDCLOUD_URL for qfieldcloud-cli (with the trailing slash)",
        ]
        if "ApiDomainTarget" in outputs:
            lines += [f"ApiDomainTarget: {outputs['ApiDomainTarget']}",
                      "           where your domain points: a CNAME, if Route 53 does not hold it"]
        lines += [
            "Job workers: " + (f"{image} (started as jobs come)" if image
                               else "none (jobs wait in the queue)"),
        ]
        if password:
            lines += [f"Created the staff user '{ADMIN_USERNAME}' with the password: {password}",
                      "  (shown this once and stored nowhere: keep it now)"]
        lines += [
            "Log in with the QFieldCloud CLI:",
            f"  export QFIELDCLOUD_URL={outputs['ApiUrl']}",
            f"  qfieldcloud-cli login {ADMIN_USERNAME} '<password>'",
        ]
        self.echo("\n".join(lines))

    # --- delete ----------------------------------------------------------------------------

    def delete(self, purge: bool) -> None:
        stack = cfn_ops.describe(self.cfn, self.stack_name)
        if stack is None:
            raise DeployError(f"There is no stack {self.stack_name} in {self.target.where}.")
        kept = self._data_resources()
        tables = [name for kind, name in kept if kind == "AWS::DynamoDB::Table"]
        buckets = [name for kind, name in kept if kind == "AWS::S3::Bucket"]
        if purge:
            self.confirm(f"Delete the stack {self.stack_name} AND its data: {len(tables)} tables and "
                         f"the bucket {', '.join(buckets)} with every file version? This cannot be undone.")
        else:
            self.confirm(f"Delete the stack {self.stack_name}? Its {len(tables)} tables and the bucket "
                         f"{', '.join(buckets)} are kept.")
        status = cfn_ops.delete(self.cfn, self.stack_name, self.echo)
        if status != "DELETE_COMPLETE":
            raise DeployError(f"The stack ended {status}: "
                              + "; ".join(cfn_ops.failure_reasons(self.cfn, self.stack_name)))
        self.echo(f"Deleted the stack {self.stack_name}.")
        if not purge:
            self.echo(f"Kept {len(tables)} tables ({stack.outputs.get('TablePrefix', '')}*) and the "
                      f"bucket {', '.join(buckets)}; `--delete --purge` deletes them.")
            return
        self._purge(tables, buckets)

    def _data_resources(self) -> list[tuple[str, str]]:
        resources = self.cfn.describe_stack_resources(StackName=self.stack_name)["StackResources"]
        return [(r["ResourceType"], r["PhysicalResourceId"]) for r in resources
                if r.get("ResourceType") in ("AWS::DynamoDB::Table", "AWS::S3::Bucket")
                and r.get("PhysicalResourceId")]

    def _purge(self, tables: list[str], buckets: list[str]) -> None:
        repository_name = images.repository_name
        dynamodb, s3, ecr = (self.target.client(s) for s in ("dynamodb", "s3", "ecr"))
        for table in tables:
            dynamodb.delete_table(TableName=table)
        self.echo(f"Deleted {len(tables)} tables.")
        for bucket in buckets:
            versions = 0
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
                doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                          for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
                if doomed:
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
                    versions += len(doomed)
            s3.delete_bucket(Bucket=bucket)
            self.echo(f"Deleted the bucket {bucket} ({versions} object versions).")
        try:
            ecr.delete_repository(repositoryName=repository_name(self.stack_name), force=True)
            self.echo(f"Deleted the job image repository {repository_name(self.stack_name)}.")
        except ClientError as error:
            if error.response["Error"]["Code"] != "RepositoryNotFoundException":
                raise
        artifacts = Artifacts(self.target, Artifacts.bucket_name(self.target), self.stack_name)
        try:
            removed = artifacts.remove_stack_files()
        except ClientError:
            removed = 0
        self.echo(f"Deleted {removed} deployment files of the stack.")


def _ask_on_the_terminal(question: str) -> bool:
    if not sys.stdin.isatty():
        raise DeployError(f"{question}\nNo terminal to answer on: run again with --yes to go ahead.")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def main(argv: list[str] | None = None, ask: Ask = _ask_on_the_terminal) -> int:
    args = parse_arguments(argv)

    def echo(line: str) -> None:
        print(line, flush=True)

    try:
        target = Target.resolve(args.region, args.endpoint_url)
        target.check_credentials()  # fails early, saying what to do
        deployment = Deployment(target, args.stack, echo, ask, args.yes)
        if args.delete:
            deployment.delete(args.purge)
        else:
            deployment.deploy(args.build_dir, args.job_image, args.parameter)
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ClientError as error:
        print(f"error: AWS refused a request: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted: CloudFormation goes on with what it started (see the stack's events).",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
