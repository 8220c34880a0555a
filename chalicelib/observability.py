"""Logs, metrics and traces, with aws-lambda-powertools.

- `logger`: structured JSON logs; each request's lines carry the API Gateway request id as
  correlation id, and the route and method.
- `metrics`: CloudWatch embedded-metric-format lines in the function's log, turned into metrics
  by CloudWatch: requests by route and status, bytes uploaded and downloaded, jobs.
- `tracer`: X-Ray segments around the handler and every AWS call (botocore is patched).

Locally they cost nothing: the Tracer turns itself off outside Lambda, and the local stack and
the tests set POWERTOOLS_METRICS_DISABLED so no metric lines are printed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "qfc-api"
NAMESPACE = "QFieldCloud"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)


def count_bytes(name: str, size: int) -> None:
    """`BytesUploaded` or `BytesDownloaded`: the size of a file that went in or out."""
    metrics.add_metric(name=name, unit=MetricUnit.Bytes, value=size)


def _count_request(event: dict[str, Any], response: dict[str, Any]) -> None:
    """One request, by route and status (the bytes metrics of the request share the dimensions)."""
    context = event.get("requestContext") or {}
    metrics.add_dimension(name="route", value=f"{context.get('httpMethod')} {context.get('resourcePath')}")
    metrics.add_dimension(name="status", value=str(response.get("statusCode")))
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)


def lambda_handler(app: Callable[[dict, Any], dict]) -> Callable[[dict, Any], dict]:
    """The Lambda entry point around the Chalice app: logs with the request's correlation id,
    a trace of the invocation, the request counted, metrics flushed."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST,
                                  clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    def handler(event: dict, context: Any) -> dict:
        response: dict[str, Any] = {"statusCode": 500}  # if the app itself raises
        try:
            response = app(event, context)
            return response
        finally:
            _count_request(event, response)
            publish_metrics()

    return handler


def publish_metrics() -> None:
    """Print the collected metrics (unless disabled) and start afresh: a disabled flush keeps
    them, and a long-running process (the local stack, a worker) would pile them up."""
    metrics.flush_metrics()
    metrics.clear_metrics()
