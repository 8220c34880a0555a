"""DynamoDB tables, derived from the PynamoDB models so the schema is written only once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pynamodb.models import Model

from chalicelib.models import ALL_MODELS

from .cfn import Json, get_att, resource, sub
from .parameters import table_name_value

# Tables hold the users' data: deleting or replacing the stack must not take them along.
_KEEP = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}


def table_suffix(model: type[Model]) -> str:
    """The model's table name without the prefix (the stack gives the prefix)."""
    return model.Meta.table


def table_logical_id(model: type[Model]) -> str:
    return f"{model.__name__}Table"


def _hash_key_first(key_schema: list[Json]) -> list[Json]:
    # PynamoDB lists keys in attribute order; CloudFormation wants the HASH key first.
    return sorted(key_schema, key=lambda key: key["KeyType"] != "HASH")


def _index(index_schema: dict[str, Any]) -> Json:
    return {
        "IndexName": index_schema["index_name"],
        "KeySchema": _hash_key_first(index_schema["key_schema"]),
        "Projection": index_schema["projection"],
    }


def table_properties(model: type[Model]) -> Json:
    # PynamoDB builds CreateTable's arguments from the model; only the outer keys need renaming.
    schema = model._get_schema()
    properties: Json = {
        "TableName": table_name_value(table_suffix(model)),
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": schema["attribute_definitions"],
        "KeySchema": _hash_key_first(schema["key_schema"]),
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
    }
    if schema["global_secondary_indexes"]:
        properties["GlobalSecondaryIndexes"] = [
            _index(index) for index in schema["global_secondary_indexes"]
        ]
    if schema["local_secondary_indexes"]:
        properties["LocalSecondaryIndexes"] = [
            _index(index) for index in schema["local_secondary_indexes"]
        ]
    ttl = model._ttl_attribute()
    if ttl is not None:
        properties["TimeToLiveSpecification"] = {"AttributeName": ttl.attr_name, "Enabled": True}
    stream_view_type = getattr(model.Meta, "stream_view_type", None)
    if stream_view_type:
        properties["StreamSpecification"] = {"StreamViewType": stream_view_type}
    return properties


def table_resources() -> Json:
    return {
        table_logical_id(model): resource(
            "AWS::DynamoDB::Table", table_properties(model), **_KEEP
        )
        for model in ALL_MODELS
    }


def table_arns(models: Iterable[type[Model]] = ALL_MODELS) -> list[Json]:
    """The models' tables (every table by default) and their indexes (a Query on an index is
    authorized on the index's ARN)."""
    arns: list[Json] = []
    for model in models:
        logical_id = table_logical_id(model)
        arns.append(get_att(logical_id, "Arn"))
        if model._indexes:
            arns.append(sub(f"${{{logical_id}.Arn}}/index/*"))
    return arns
