"""The one-index-per-update rule of DynamoDB tables in CloudFormation, taken care of.

CloudFormation adds or deletes at most one global secondary index of a table per stack update
(two at once fail the update). A new version whose models add several indexes to one table is
therefore deployed in steps: each step's template is the new template with every table's indexes
one change further from the deployed ones, and the last step is the new template itself.
Additions come first, so that the code still running (the previous version, until the last step)
always has the indexes it queries; an index whose definition changed is deleted, then added.
"""

from __future__ import annotations

import copy
from typing import Any

Json = dict[str, Any]
TABLE = "AWS::DynamoDB::Table"


def _indexes(table: Json) -> dict[str, Json]:
    return {index["IndexName"]: index for index in table["Properties"].get("GlobalSecondaryIndexes", [])}


def _changes(deployed: Json, target: Json) -> list[tuple[str, str]]:
    """The index changes from one table definition to another, in the order they are made:
    ("add" | "delete", index name)."""
    before, after = _indexes(deployed), _indexes(target)
    changed = [name for name in after if name in before and after[name] != before[name]]
    return ([("add", name) for name in after if name not in before]
            + [step for name in changed for step in (("delete", name), ("add", name))]
            + [("delete", name) for name in before if name not in after])


def _with_indexes(table: Json, indexes: list[Json]) -> Json:
    """`table` with these indexes, and the attribute definitions its keys and theirs use."""
    shaped = copy.deepcopy(table)
    properties = shaped["Properties"]
    used = {key["AttributeName"] for key in properties["KeySchema"]}
    for index in [*indexes, *properties.get("LocalSecondaryIndexes", [])]:
        used.update(key["AttributeName"] for key in index["KeySchema"])
    definitions = {d["AttributeName"]: d for d in table["Properties"]["AttributeDefinitions"]}
    properties["AttributeDefinitions"] = [definitions[name] for name in sorted(used)]
    if indexes:
        properties["GlobalSecondaryIndexes"] = indexes
    else:
        properties.pop("GlobalSecondaryIndexes", None)
    return shaped


def _state_after(deployed: Json, target: Json, changes: list[tuple[str, str]]) -> Json:
    """`target`'s table with the deployed indexes and `changes` made to them."""
    indexes = _indexes(deployed)
    wanted = _indexes(target)
    for action, name in changes:
        if action == "add":
            indexes[name] = wanted[name]
        else:
            indexes.pop(name)
    # Attribute definitions of deleted indexes come from the deployed table.
    merged = copy.deepcopy(target)
    known = {d["AttributeName"]: d for d in deployed["Properties"]["AttributeDefinitions"]}
    known.update({d["AttributeName"]: d for d in target["Properties"]["AttributeDefinitions"]})
    merged["Properties"]["AttributeDefinitions"] = list(known.values())
    return _with_indexes(merged, list(indexes.values()))


def index_steps(deployed: Json, target: Json) -> list[Json]:
    """The templates to deploy one after the other to go from `deployed` to `target`: `target`
    alone when no table gains or loses more than one index."""
    deployed_tables = {name: body for name, body in deployed.get("Resources", {}).items()
                       if body.get("Type") == TABLE}
    changes = {name: _changes(deployed_tables[name], body)
               for name, body in target["Resources"].items()
               if body["Type"] == TABLE and name in deployed_tables}
    count = max((len(table_changes) for table_changes in changes.values()), default=0)
    steps = []
    for step in range(1, count):
        template = copy.deepcopy(target)
        for name, table_changes in changes.items():
            if len(table_changes) > step:
                template["Resources"][name] = _state_after(
                    deployed_tables[name], target["Resources"][name], table_changes[:step])
        steps.append(template)
    return [*steps, target]


def added_indexes(deployed: Json, target: Json) -> dict[str, set[str]]:
    """The indexes `target` adds to tables `deployed` has, by table logical id."""
    added = {}
    for name, body in target["Resources"].items():
        before = deployed.get("Resources", {}).get(name)
        if body["Type"] == TABLE and before is not None:
            new = set(_indexes(body)) - set(_indexes(before))
            if new:
                added[name] = new
    return added


def added_tables(deployed: Json, target: Json) -> set[str]:
    """The tables `target` creates in a stack that has `deployed`."""
    return {name for name, body in target["Resources"].items()
            if body["Type"] == TABLE and name not in deployed.get("Resources", {})}
