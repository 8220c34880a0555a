"""Assembles the whole CloudFormation template from its parts."""

from __future__ import annotations

from chalice import Chalice

from . import api, console, domain, edge, jobs, large_requests, parameters
from .cfn import Json, get_att, ref
from .iam import role_resources
from .operations import alarm_resources, dashboard_resources
from .storage import (
    BUCKET,
    JOBS_DEAD_LETTER_QUEUE,
    JOBS_QUEUE,
    bucket_resources,
    queue_resources,
)
from .tables import table_resources

DESCRIPTION = (
    "QFieldCloud-compatible serverless sync server: API Gateway + Lambda (Chalice), DynamoDB, "
    "a versioned S3 bucket, SQS and QGIS job workers on Fargate."
)


def _output(value: object, description: str, **attributes: object) -> Json:
    return {"Description": description, "Value": value, **attributes}


def _outputs() -> Json:
    return {
        "ApiUrl": _output(
            domain.api_url(edge.api_url()), "QFIELDCLOUD_URL for qfieldcloud-cli (keep the trailing slash)"
        ),
        "ServerUrl": _output(domain.server_url(edge.server_root_url()), "The server URL to enter in QField"),
        "ApiGatewayUrl": _output(api.api_url(), "API Gateway itself (no uploads above 4.4 MB there)"),
        "DistributionId": _output(ref(edge.DISTRIBUTION), "The CloudFront distribution"),
        "ApiDomainTarget": domain.target_output(edge.distribution_domain_name()),
        "BucketName": _output(ref(BUCKET), "The files bucket (QFC_BUCKET)"),
        "TablePrefix": _output(parameters.table_prefix_value, "QFC_TABLE_PREFIX"),
        "JobsQueueUrl": _output(ref(JOBS_QUEUE), "The jobs queue (QFC_JOBS_QUEUE_URL)"),
        "JobsDeadLetterQueueUrl": _output(
            ref(JOBS_DEAD_LETTER_QUEUE), "Job messages that failed 3 times"
        ),
        "ApiFunctionName": _output(ref(api.FUNCTION), "The API's Lambda function"),
        "JobClusterName": _output(
            ref(jobs.CLUSTER), "ECS cluster of the job workers", Condition=parameters.DEPLOY_JOB_WORKERS
        ),
    }


def build_template(app: Chalice) -> Json:
    resources: Json = {
        **table_resources(),
        **bucket_resources((console.bucket_policy_statement(edge.DISTRIBUTION),)),
        **queue_resources(),
        **role_resources(),
        **api.function_resources(),
        **api.rest_api_resources(app),
        **jobs.job_resources(get_att(JOBS_QUEUE, "QueueName")),
        **alarm_resources(),
        **dashboard_resources(),
        **domain.domain_resources(edge.distribution_domain_name()),
        **large_requests.large_request_resources(),
        **console.resources(),
        **edge.distribution_resources(console.served_with_console(edge.distribution_parts())),
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": DESCRIPTION,
        "Metadata": parameters.interface(),
        "Parameters": parameters.parameters(),
        "Conditions": {**parameters.conditions(), **large_requests.conditions()},
        "Rules": domain.rules(),
        "Resources": resources,
        "Outputs": _outputs(),
    }
