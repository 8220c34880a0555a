"""Creating, updating and deleting the stack: change sets, what they change, waiting with progress.

A change set lets the operator see what will change before anything does, and tells "no changes"
apart from a change: running the deployment twice changes nothing the second time.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .target import DeployError

# A stack in one of these can be updated; a stack being changed must be waited for first.
DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE"}
SUCCEEDED = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE"}
# What CloudFormation leaves after a first creation failed: it must be deleted before a new try.
FAILED_CREATION = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"}
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
POLL_SECONDS = 5
LISTED_CHANGES = 40

Echo = Callable[[str], None]


@dataclass
class Stack:
    name: str
    status: str
    parameters: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def in_progress(self) -> bool:
        return self.status.endswith("_IN_PROGRESS")


def describe(cfn: Any, name: str) -> Stack | None:
    try:
        (found,) = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    if found["StackStatus"] == "REVIEW_IN_PROGRESS":
        return None  # a change set of a creation that was never executed: no stack yet
    return Stack(
        name=name,
        status=found["StackStatus"],
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in found.get("Parameters", [])},
        outputs={o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])},
    )


def deployed_template(cfn: Any, name: str) -> dict[str, Any]:
    body = cfn.get_template(StackName=name, TemplateStage="Original")["TemplateBody"]
    if isinstance(body, str):
        return json.loads(body)
    return body


def parameter_list(template: dict[str, Any], given: dict[str, str], stack: Stack | None) -> list[dict]:
    """CloudFormation's parameters: those given, the deployed value of the others the stack
    already has (so that an update keeps what the operator chose before), defaults for the rest."""
    parameters = []
    for name in template.get("Parameters", {}):
        if name in given:
            parameters.append({"ParameterKey": name, "ParameterValue": given[name]})
        elif stack is not None and name in stack.parameters:
            parameters.append({"ParameterKey": name, "UsePreviousValue": True})
    return parameters


def effective_parameters(template: dict[str, Any], given: dict[str, str],
                         stack: Stack | None) -> dict[str, str]:
    """The value each parameter will have: given, else the deployed one, else its default. A
    deployed NoEcho value is left out: CloudFormation shows it masked (`****`), and keeps it as
    it checked it when it was set."""
    values = {}
    for name, declared in template.get("Parameters", {}).items():
        if name in given:
            values[name] = given[name]
        elif stack is not None and name in stack.parameters:
            if not declared.get("NoEcho"):
                values[name] = stack.parameters[name]
        elif "Default" in declared:
            values[name] = str(declared["Default"])
    return values


def refusals(template: dict[str, Any], values: dict[str, str], region: str) -> list[str]:
    """What CloudFormation would refuse of these parameter values before changing anything: a
    value its parameter does not allow, an assertion of the template's Rules that fails. Checked
    by the deployment before it builds anything, with the rules as the template states them."""
    refused = []
    for name, value in values.items():
        declared = template["Parameters"][name]
        pattern = declared.get("AllowedPattern")
        shown = "****" if declared.get("NoEcho") else value  # a secret is not printed
        if pattern and not re.fullmatch(pattern, value):
            wanted = declared.get("ConstraintDescription") or f"of the pattern {pattern}"
            refused.append(f"{name}={shown}: must be {wanted}")
        if "AllowedValues" in declared and value not in map(str, declared["AllowedValues"]):
            refused.append(f"{name}={shown}: must be one of {', '.join(map(str, declared['AllowedValues']))}")
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not _rule_value(rule["RuleCondition"], values, region):
            continue
        refused += [assertion["AssertDescription"] for assertion in rule["Assertions"]
                    if not _rule_value(assertion["Assert"], values, region)]
    return refused


def _rule_value(expression: Any, values: dict[str, str], region: str) -> Any:
    """A rule's expression evaluated as CloudFormation does, for the functions our rules use."""
    if isinstance(expression, str):
        return expression
    if isinstance(expression, list):
        return [_rule_value(item, values, region) for item in expression]
    ((function, argument),) = expression.items()
    if function == "Ref":
        return region if argument == "AWS::Region" else values.get(argument, "")
    arguments = _rule_value(argument, values, region)
    if function == "Fn::Equals":
        return arguments[0] == arguments[1]
    if function == "Fn::Not":
        return not arguments[0]
    if function == "Fn::And":
        return all(arguments)
    if function == "Fn::Or":
        return any(arguments)
    if function == "Fn::Contains":
        return arguments[1] in arguments[0]
    raise ValueError(f"{function}: a rule function the deployment does not evaluate")


@dataclass
class ChangeSet:
    stack: str
    id: str
    creates_stack: bool
    changes: list[dict[str, Any]]

    def describe(self, listed: int = LISTED_CHANGES) -> list[str]:
        """One line per change; above `listed` changes, one line per action and resource type."""
        changes = []
        for change in self.changes:
            detail = change["ResourceChange"]
            action = detail["Action"]
            if action == "Modify" and detail.get("Replacement") in ("True", "Conditional"):
                action = "Replace" if detail["Replacement"] == "True" else "Modify (may replace)"
            changes.append((action, detail["ResourceType"], detail["LogicalResourceId"]))
        if len(changes) <= listed:
            return [f"  {action:<20} {logical_id} ({kind})" for action, kind, logical_id in changes]
        counted = Counter((action, kind) for action, kind, _ in changes)
        return [f"  {action:<20} {count} × {kind}" for (action, kind), count in counted.items()]


def create_change_set(cfn: Any, name: str, template_url: str, parameters: list[dict],
                      creates_stack: bool) -> ChangeSet | None:
    """The change set, described, or None when it would change nothing (then it is deleted)."""
    change_set_name = f"deploy-{uuid.uuid4().hex[:12]}"
    created = cfn.create_change_set(
        StackName=name, ChangeSetName=change_set_name, TemplateURL=template_url,
        Parameters=parameters, Capabilities=CAPABILITIES,
        ChangeSetType="CREATE" if creates_stack else "UPDATE",
    )
    change_set_id = created["Id"]
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set_id, StackName=name)
        status = described["Status"]
        if status in ("CREATE_COMPLETE", "FAILED"):
            break
        time.sleep(POLL_SECONDS)
    changes = described.get("Changes", [])
    reason = described.get("StatusReason") or ""
    if status == "FAILED" or not changes:
        cfn.delete_change_set(ChangeSetName=change_set_id, StackName=name)
        if not changes and (any(text in reason for text in NO_CHANGES) or status != "FAILED"):
            return None
        raise DeployError(f"CloudFormation refused the change set: {reason}")
    while "NextToken" in described:
        described = cfn.describe_change_set(ChangeSetName=change_set_id, StackName=name,
                                            NextToken=described["NextToken"])
        changes += described.get("Changes", [])
    return ChangeSet(name, change_set_id, creates_stack, changes)


def execute(cfn: Any, change_set: ChangeSet, echo: Echo) -> str:
    started = _latest_event_time(cfn, change_set.stack)
    cfn.execute_change_set(ChangeSetName=change_set.id, StackName=change_set.stack)
    return wait(cfn, change_set.stack, started, echo)


def apply_directly(cfn: Any, change_set: ChangeSet, template_url: str, parameters: list[dict],
                   echo: Echo) -> str:
    """What the change set would do, through CreateStack/UpdateStack (moto: infra/standin.py)."""
    cfn.delete_change_set(ChangeSetName=change_set.id, StackName=change_set.stack)
    started = _latest_event_time(cfn, change_set.stack)
    arguments = dict(StackName=change_set.stack, TemplateURL=template_url, Parameters=parameters,
                     Capabilities=CAPABILITIES)
    if change_set.creates_stack:
        cfn.delete_stack(StackName=change_set.stack)  # the review stack the change set made
        cfn.create_stack(**arguments)
    else:
        cfn.update_stack(**arguments)
    return wait(cfn, change_set.stack, started, echo)


def _latest_event_time(cfn: Any, name: str) -> Any:
    try:
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    except ClientError:
        return None
    return events[0]["Timestamp"] if events else None


def wait(cfn: Any, name: str, since: Any, echo: Echo) -> str:
    """Waits until the stack's operation ends, printing each resource event as it comes; the
    final status."""
    seen: set[str] = set()
    stack_id = None
    while True:
        try:
            (found,) = cfn.describe_stacks(StackName=stack_id or name)["Stacks"]
        except ClientError as error:
            if "does not exist" in str(error):
                return "DELETE_COMPLETE"
            raise
        stack_id = found["StackId"]  # a deleted stack is found by its id only
        events = cfn.describe_stack_events(StackName=stack_id)["StackEvents"]
        for event in reversed(events):
            if event["EventId"] in seen or (since is not None and event["Timestamp"] <= since):
                continue
            seen.add(event["EventId"])
            if not event.get("LogicalResourceId"):
                continue
            reason = f": {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
            echo(f"  {event['ResourceStatus']:<20} {event['LogicalResourceId']}{reason}")
        status = found["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(POLL_SECONDS)


def failure_reasons(cfn: Any, name: str, since: Any = None) -> list[str]:
    """The reasons CloudFormation gave for resources that failed."""
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    return [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}" for e in events
            if e["ResourceStatus"].endswith("_FAILED") and (since is None or e["Timestamp"] > since)]


def delete(cfn: Any, name: str, echo: Echo) -> str:
    started = _latest_event_time(cfn, name)
    cfn.delete_stack(StackName=name)
    return wait(cfn, name, started, echo)
