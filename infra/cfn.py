"""Tiny constructors for CloudFormation intrinsic functions, so templates read like templates."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def ref(name: str) -> Json:
    return {"Ref": name}


def get_att(resource: str, attribute: str) -> Json:
    return {"Fn::GetAtt": [resource, attribute]}


def sub(text: str) -> Json:
    return {"Fn::Sub": text}


def join(*parts: Any) -> Json:
    return {"Fn::Join": ["", list(parts)]}


def if_(condition: str, when_true: Any, when_false: Any) -> Json:
    return {"Fn::If": [condition, when_true, when_false]}


def equals(left: Any, right: Any) -> Json:
    return {"Fn::Equals": [left, right]}


def not_(condition: Json) -> Json:
    return {"Fn::Not": [condition]}


def and_(*conditions: Json) -> Json:
    return {"Fn::And": list(conditions)}


def condition(name: str) -> Json:
    """A named condition, inside another condition."""
    return {"Condition": name}


NO_VALUE = ref("AWS::NoValue")


def resource(resource_type: str, properties: Json, **attributes: Any) -> Json:
    """A resource; keyword arguments are resource attributes (Condition, DependsOn, …)."""
    return {"Type": resource_type, **attributes, "Properties": properties}


def assume_role_policy(service: str) -> Json:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }


def policy_document(*statements: Json) -> Json:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: list[str], resources: list[Any], sid: str) -> Json:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
