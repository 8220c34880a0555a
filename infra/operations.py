"""Running the service: alarms (e-mailed when the AlarmEmail parameter is set) and a dashboard.

The alarms watch what a user would notice, or would soon:
- the API answering 5xx (API Gateway's own count, as a share of the requests, once there are a few);
- the API function failing or throttled (Lambda's Errors and Throttles);
- job messages in the dead-letter queue (jobs that could not be run three times);
- jobs failing, counted from the workers' logs ("Job done" with status "failed");
- a job stopped for its memory (the worker's message in its log), and a worker near the task's
  memory (ECS's MemoryUtilization of the service).
A missing metric (no traffic, no jobs) is never an alarm.
"""

from __future__ import annotations

import json
from typing import Any

from .api import FUNCTION, STAGE_NAME
from .cfn import NO_VALUE, Json, if_, ref, resource, sub
from .jobs import CLUSTER, JOB_LOGS, SERVICE
from .parameters import ALARM_EMAIL, DEPLOY_JOB_WORKERS, HAS_ALARM_EMAIL
from .storage import JOBS_DEAD_LETTER_QUEUE, JOBS_QUEUE

ALARM_TOPIC = "AlarmTopic"
DASHBOARD = "Dashboard"
API_ERRORS_ALARM = "ApiErrorRateAlarm"
FUNCTION_ERRORS_ALARM = "ApiFunctionErrorsAlarm"
FUNCTION_THROTTLES_ALARM = "ApiFunctionThrottlesAlarm"
DEAD_LETTERS_ALARM = "JobsDeadLetterAlarm"
JOB_FAILURES_ALARM = "JobFailuresAlarm"
JOB_MEMORY_ALARM = "JobOutOfMemoryAlarm"
WORKER_MEMORY_ALARM = "JobWorkerMemoryAlarm"
JOB_FAILURES_FILTER = "JobFailuresMetricFilter"
JOB_MEMORY_FILTER = "JobOutOfMemoryMetricFilter"

# The stack's own metrics (from the workers' logs), apart from the app's (chalicelib.observability).
METRICS_NAMESPACE = sub("QFieldCloud/${AWS::StackName}")
# What the worker logs when a job ends (job_containers/worker.py) and what its supervisor says of a
# job it stopped for its memory (job_containers/isolation.py).
JOB_DONE_FAILED = '{ ($.message = "Job done") && ($.status = "failed") }'
JOB_STOPPED_FOR_MEMORY = '"MB of memory and was stopped"'

FIVE_MINUTES = 300
# The share of 5xx answers, in percent, above which the API is in trouble, and the requests
# needed in five minutes before a share means anything.
API_ERROR_PERCENT = 5
API_MIN_REQUESTS = 20
FUNCTION_ERRORS = 5
JOB_FAILURES_PER_HOUR = 5
WORKER_MEMORY_PERCENT = 90


def _actions() -> Json:
    notify = if_(HAS_ALARM_EMAIL, [ref(ALARM_TOPIC)], NO_VALUE)
    return {"AlarmActions": notify, "OKActions": notify}


def _alarm(name: str, description: str, threshold: float, *, evaluations: int = 1, **metric: Any) -> Json:
    return resource("AWS::CloudWatch::Alarm", {
        "AlarmName": sub(f"${{AWS::StackName}}-{name}"),
        "AlarmDescription": description,
        "Threshold": threshold,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "EvaluationPeriods": evaluations,
        "TreatMissingData": "notBreaching",
        **_actions(),
        **metric,
    })


def _stat(metric_id: str, namespace: str, name: str, dimensions: list[Json], stat: str = "Sum") -> Json:
    return {"Id": metric_id, "ReturnData": False, "MetricStat": {
        "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
        "Period": FIVE_MINUTES, "Stat": stat}}


def _api_dimensions() -> list[Json]:
    return [{"Name": "ApiName", "Value": sub("${AWS::StackName}-api")},
            {"Name": "Stage", "Value": STAGE_NAME}]


def _job_metric_filter(pattern: str, metric_name: str) -> Json:
    return resource("AWS::Logs::MetricFilter", {
        "LogGroupName": ref(JOB_LOGS),
        "FilterPattern": pattern,
        "MetricTransformations": [{"MetricNamespace": METRICS_NAMESPACE, "MetricName": metric_name,
                                   "MetricValue": "1", "Unit": "Count"}],
    }, Condition=DEPLOY_JOB_WORKERS)


def alarm_resources() -> Json:
    function = [{"Name": "FunctionName", "Value": ref(FUNCTION)}]
    dead_letters = [{"Name": "QueueName", "Value": {"Fn::GetAtt": [JOBS_DEAD_LETTER_QUEUE, "QueueName"]}}]
    workers = [{"Name": "ClusterName", "Value": ref(CLUSTER)},
               {"Name": "ServiceName", "Value": {"Fn::GetAtt": [SERVICE, "Name"]}}]
    return {
        ALARM_TOPIC: resource("AWS::SNS::Topic", {
            "DisplayName": sub("QFieldCloud ${AWS::StackName} alarms"),
            "Subscription": [{"Protocol": "email", "Endpoint": ref(ALARM_EMAIL)}],
        }, Condition=HAS_ALARM_EMAIL),
        API_ERRORS_ALARM: _alarm(
            "api-5xx",
            f"More than {API_ERROR_PERCENT}% of the API's answers were server errors (5xx) "
            "in two five-minute periods in a row.",
            API_ERROR_PERCENT, evaluations=2,
            Metrics=[
                _stat("errors", "AWS/ApiGateway", "5XXError", _api_dimensions()),
                _stat("requests", "AWS/ApiGateway", "Count", _api_dimensions()),
                {"Id": "rate", "ReturnData": True, "Label": "5xx answers (%)",
                 "Expression": f"IF(requests >= {API_MIN_REQUESTS}, 100 * errors / requests, 0)"},
            ]),
        FUNCTION_ERRORS_ALARM: _alarm(
            "api-function-errors",
            f"The API function failed {FUNCTION_ERRORS} times or more in five "
            "minutes (an invocation that raised or timed out).",
            FUNCTION_ERRORS, Namespace="AWS/Lambda", MetricName="Errors", Dimensions=function,
            Statistic="Sum", Period=FIVE_MINUTES),
        FUNCTION_THROTTLES_ALARM: _alarm(
            "api-throttled",
            "Lambda refused to run the API function (throttled): the account's "
            "concurrency is exhausted.",
            1, Namespace="AWS/Lambda", MetricName="Throttles", Dimensions=function, Statistic="Sum",
            Period=FIVE_MINUTES),
        DEAD_LETTERS_ALARM: _alarm(
            "jobs-dead-letters",
            "Job messages reached the dead-letter queue: jobs that could not be "
            "run three times (a worker marks them failed).",
            1, Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible",
            Dimensions=dead_letters, Statistic="Maximum", Period=FIVE_MINUTES),
        JOB_FAILURES_FILTER: _job_metric_filter(JOB_DONE_FAILED, "JobsFailed"),
        JOB_MEMORY_FILTER: _job_metric_filter(JOB_STOPPED_FOR_MEMORY, "JobsOutOfMemory"),
        JOB_FAILURES_ALARM: {**_alarm(
            "jobs-failing",
            f"{JOB_FAILURES_PER_HOUR} jobs or more failed within an hour.",
            JOB_FAILURES_PER_HOUR, Namespace=METRICS_NAMESPACE, MetricName="JobsFailed",
            Statistic="Sum", Period=3600), "Condition": DEPLOY_JOB_WORKERS},
        JOB_MEMORY_ALARM: {**_alarm(
            "jobs-out-of-memory",
            "A job was stopped because it used more memory than a job may "
            "(QFC_JOB_MEMORY_MB).",
            1, Namespace=METRICS_NAMESPACE, MetricName="JobsOutOfMemory", Statistic="Sum",
            Period=FIVE_MINUTES), "Condition": DEPLOY_JOB_WORKERS},
        WORKER_MEMORY_ALARM: {**_alarm(
            "job-worker-memory",
            f"A job worker used {WORKER_MEMORY_PERCENT}% or more of its task's "
            "memory for three minutes: it is about to be killed for memory.",
            WORKER_MEMORY_PERCENT, evaluations=3, Namespace="AWS/ECS", MetricName="MemoryUtilization",
            Dimensions=workers, Statistic="Maximum", Period=60), "Condition": DEPLOY_JOB_WORKERS},
    }


def _widget(title: str, metrics: list[list[Any]], x: int, y: int, stat: str = "Sum") -> Json:
    return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": {
        "title": title, "region": "${AWS::Region}", "stat": stat, "period": FIVE_MINUTES,
        "view": "timeSeries", "metrics": metrics}}


def dashboard_body() -> str:
    """The dashboard as CloudFormation substitutes it (`${...}` are the stack's names)."""
    api = ["ApiName", "${AWS::StackName}-api", "Stage", STAGE_NAME]
    function = ["FunctionName", f"${{{FUNCTION}}}"]
    jobs_queue = ["QueueName", f"${{{JOBS_QUEUE}.QueueName}}"]
    dead_letters = ["QueueName", f"${{{JOBS_DEAD_LETTER_QUEUE}.QueueName}}"]
    namespace = "QFieldCloud/${AWS::StackName}"
    widgets = [
        _widget("API requests and errors", [
            ["AWS/ApiGateway", "Count", *api], [".", "4XXError", *api], [".", "5XXError", *api]], 0, 0),
        _widget("API latency (ms, p50 and p99)", [
            ["AWS/ApiGateway", "Latency", *api, {"stat": "p50"}], ["...", {"stat": "p99"}]], 12, 0),
        _widget("API function", [
            ["AWS/Lambda", "Invocations", *function], [".", "Errors", *function],
            [".", "Throttles", *function]], 0, 6),
        _widget("Jobs waiting, running, dead", [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", *jobs_queue],
            [".", "ApproximateNumberOfMessagesNotVisible", *jobs_queue],
            [".", "ApproximateNumberOfMessagesVisible", *dead_letters]], 12, 6, stat="Maximum"),
        _widget("Jobs failed and stopped for memory", [
            [namespace, "JobsFailed"], [".", "JobsOutOfMemory"]], 0, 12),
        _widget("Job workers: CPU and memory (%)", [
            ["AWS/ECS", "CPUUtilization", "ClusterName", "${AWS::StackName}-jobs", "ServiceName",
             "${AWS::StackName}-jobs"], [".", "MemoryUtilization", ".", ".", ".", "."]], 12, 12,
            stat="Maximum"),
    ]
    return json.dumps({"widgets": widgets}, separators=(",", ":"))


def dashboard_resources() -> Json:
    return {DASHBOARD: resource("AWS::CloudWatch::Dashboard", {
        "DashboardName": sub("${AWS::StackName}"),
        "DashboardBody": sub(dashboard_body()),
    })}
