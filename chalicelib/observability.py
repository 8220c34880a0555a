"""Logs, metrics and traces, with aws-lambda-powertools.

- `logger`: structured JSON logs; each request's lines carry the API Gateway request id as
  correlation id, and the route and method.
- `metrics`: CloudWatch embedded-metric-format lines in the function's log, turned into metrics
  by CloudWatch: requests by route and status, bytes uploaded and downloaded, jobs.
- traces: X-Ray segments around the handler and every AWS call (botocore is patched), when
  tracing is on (`tracing_is_on`). Only then is the Tracer made: it loads the X-Ray SDK, a
  sizeable part of a cold start (bench/README.md, cold_start).

Locally they cost nothing: tracing is off outside Lambda, and the local stack and the tests set
POWERTOOLS_METRICS_DISABLED so no metric lines are printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

# Which part of the service writes (the API, a job worker): the deployment sets
# POWERTOOLS_SERVICE_NAME for each (infra/environment.py), so their logs and metrics tell apart.
SERVICE = os.environ.get(constants.SERVICE_NAME_ENV) or "qfc-api"
NAMESPACE = "QFieldCloud"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def tracing_is_on() -> bool:
    """Powertools' own rule, which its Tracer applies to itself once made: inside Lambda, but not
    in SAM's or Chalice's local emulation, unless POWERTOOLS_TRACE_DISABLED says otherwise."""
    if resolve_truthy_env_var_choice(env=os.getenv(constants.TRACER_DISABLED_ENV, "false")):
        return False
    in_lambda = os.getenv(constants.LAMBDA_TASK_ROOT_ENV)
    emulated = os.getenv(constants.SAM_LOCAL_ENV) or os.getenv(constants.CHALICE_LOCAL_ENV)
    return bool(in_lambda) and not emulated


def count_bytes(name: str, size: int) -> None:
    """`BytesUploaded` or `BytesDownloaded`: the size of a file that went in or out."""
    metrics.add_metric(name=name, unit=MetricUnit.Bytes, value=size)


def _count_request(event: dict[str, Any], response: dict[str, Any]) -> None:
    context = event.get("requestContext") or {}
    count_request(f"{context.get('httpMethod')} {context.get('resourcePath')}", response.get("statusCode"))


def count_request(route: str, status: object) -> None:
    """One request, by route and status (the bytes metrics of the request share the dimensions)."""
    metrics.add_dimension(name="route", value=route)
    metrics.add_dimension(name="status", value=str(status))
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)


def lambda_handler(app: Callable[[dict, Any], dict]) -> Callable[[dict, Any], dict]:
    """The Lambda entry point around the Chalice app: logs with the request's correlation id,
    a trace of the invocation, the request counted, metrics flushed."""

    def handler(event: dict, context: Any) -> dict:
        response: dict[str, Any] = {"statusCode": 500}  # if the app itself raises
        try:
            response = app(event, context)
            return response
        finally:
            _count_request(event, response)
            publish_metrics()

    if tracing_is_on():
        from aws_lambda_powertools import Tracer  # the X-Ray SDK: only for traces

        handler = Tracer(service=SERVICE).capture_lambda_handler(capture_response=False)(handler)
    return logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST,
                                        clear_state=True)(handler)


def publish_metrics() -> None:
    """Print the collected metrics (unless disabled) and start afresh: a disabled flush keeps
    them, and a long-running process (the local stack, a worker) would pile them up."""
    metrics.flush_metrics()
    metrics.clear_metrics()
