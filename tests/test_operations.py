"""Operations in the template (infra/operations.py): the alarms watch the stack's own resources,
notify the optional e-mail, and never fire on missing data; the job alarms count what a failing
worker really logs; the dashboard names what exists. (The custom domain, on the distribution:
tests/test_edge_infra.py.)

moto's CloudFormation models none of these (tests/e2e/test_deploy.py), so they are checked here,
on the generated template, beside cfn-lint in tests/test_infra.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import shared_data
from tests.files_helpers import upload
from tests.jobs_helpers import run_jobs

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("operations") / "template.json"
    subprocess.run([sys.executable, "-m", "infra.build", "--out", str(out)], cwd=REPO, check=True,
                   capture_output=True)
    return json.loads(out.read_text())


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in template["Resources"].items() if body["Type"] == kind}


def metrics_of(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """(namespace, metric name, dimensions) of every metric an alarm reads."""
    properties = alarm["Properties"]
    if "Metrics" in properties:
        return [m["MetricStat"]["Metric"] for m in properties["Metrics"] if "MetricStat" in m]
    return [{"Namespace": properties["Namespace"], "MetricName": properties["MetricName"],
             "Dimensions": properties.get("Dimensions", [])}]


def notifying(template) -> dict[str, dict[str, Any]]:
    """The alarms meant for people (the others scale the job workers)."""
    return {name: alarm for name, alarm in of_type(template, "AWS::CloudWatch::Alarm").items()
            if "Fn::If" in alarm["Properties"].get("AlarmActions", {})}


def alarm_on(template, namespace: str, metric: str) -> dict[str, Any]:
    (found,) = [alarm for alarm in notifying(template).values()
                if any(m["Namespace"] == namespace and m["MetricName"] == metric for m in metrics_of(alarm))]
    return found


def dimensions(alarm) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for metric in metrics_of(alarm) for d in metric.get("Dimensions", [])}


def test_alarms_notify_the_optional_email_and_ignore_missing_data(template):
    topic = of_type(template, "AWS::SNS::Topic")
    (topic_id,) = topic
    scaling = set(of_type(template, "AWS::CloudWatch::Alarm")) - set(notifying(template))

    assert topic[topic_id]["Condition"] == "HasAlarmEmail"
    assert topic[topic_id]["Properties"]["Subscription"] == [
        {"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    assert len(notifying(template)) == 7
    assert {template["Resources"][name]["Properties"]["AlarmActions"][0]["Ref"] for name in scaling} == {
        "JobScaleOutPolicy", "JobScaleInPolicy", "LargeRequestsWakeUpPolicy", "LargeRequestsSleepPolicy"}
    for name, alarm in notifying(template).items():
        properties = alarm["Properties"]
        email = {"Fn::If": ["HasAlarmEmail", [{"Ref": topic_id}], {"Ref": "AWS::NoValue"}]}
        assert properties["AlarmActions"] == properties["OKActions"] == email, name
        assert properties["TreatMissingData"] == "notBreaching", name
        assert properties["AlarmDescription"], name


def test_api_alarms_watch_this_stacks_api_and_function(template):
    (rest_api,) = of_type(template, "AWS::ApiGateway::RestApi").values()
    (stage,) = of_type(template, "AWS::ApiGateway::Stage").values()
    (function_id,) = of_type(template, "AWS::Lambda::Function")

    server_errors = alarm_on(template, "AWS/ApiGateway", "5XXError")
    assert dimensions(server_errors) == {"ApiName": rest_api["Properties"]["Name"],
                                         "Stage": stage["Properties"]["StageName"]}
    (rate,) = [m for m in server_errors["Properties"]["Metrics"] if m.get("ReturnData")]
    assert "errors / requests" in rate["Expression"]  # a share of the requests, not a count
    for metric in ("Errors", "Throttles"):
        assert dimensions(alarm_on(template, "AWS/Lambda", metric)) == {"FunctionName": {"Ref": function_id}}


def test_the_dead_letter_alarm_watches_the_dead_letter_queue(template):
    alarm = alarm_on(template, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    redrive = template["Resources"]["JobsQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]

    assert dimensions(alarm) == {"QueueName": {"Fn::GetAtt": [redrive["Fn::GetAtt"][0], "QueueName"]}}
    assert alarm["Properties"]["Threshold"] == 1


def test_job_alarms_count_the_worker_logs_and_watch_the_workers_memory(template):
    filters = of_type(template, "AWS::Logs::MetricFilter")
    (job_logs,) = [name for name, body in of_type(template, "AWS::Logs::LogGroup").items()
                   if body["Properties"]["LogGroupName"]["Fn::Sub"].endswith("-jobs")]
    cluster, service = "JobCluster", "JobService"

    for metric in ("JobsFailed", "JobsOutOfMemory"):
        (source,) = [f for f in filters.values()
                     if f["Properties"]["MetricTransformations"][0]["MetricName"] == metric]
        namespace = source["Properties"]["MetricTransformations"][0]["MetricNamespace"]
        alarm = alarm_on(template, namespace, metric)
        assert source["Properties"]["LogGroupName"] == {"Ref": job_logs}
        assert source["Condition"] == alarm["Condition"] == "DeployJobWorkers"
    memory = alarm_on(template, "AWS/ECS", "MemoryUtilization")
    assert dimensions(memory) == {"ClusterName": {"Ref": cluster},
                                  "ServiceName": {"Fn::GetAtt": [service, "Name"]}}
    assert memory["Properties"]["Threshold"] < 100


def pattern_of(template, metric: str) -> str:
    filters = of_type(template, "AWS::Logs::MetricFilter").values()
    (found,) = [f["Properties"]["FilterPattern"] for f in filters
                if f["Properties"]["MetricTransformations"][0]["MetricName"] == metric]
    return found


def test_the_job_metric_filters_match_what_a_worker_logs_for_a_job_stopped_for_memory(
    template, alice, override_settings, caplog
):
    """A real job, stopped for its memory by the real worker: the line it logs (its record, as the
    worker's log formatter writes it) has the fields the failure filter selects, and the phrase
    the memory filter looks for."""
    from chalicelib.observability import logger

    project = alice.create_project("heavy")["id"]
    project_file = shared_data.testdata() / "app" / "self_contained.qgs"
    upload(alice, project, "project.qgs", project_file.read_bytes())
    override_settings(job_memory_mb=20)
    caplog.clear()

    run_jobs()

    lines = [json.loads(logger.registered_formatter.format(record)) for record in caplog.records]
    (done,) = [line for line in lines if line.get("message") == "Job done"]
    selected = dict(re.findall(r'\$\.(\w+) = "([^"]*)"', pattern_of(template, "JobsFailed")))
    assert selected == {"message": "Job done", "status": "failed"}
    assert all(done[field] == value for field, value in selected.items()), done
    phrase = pattern_of(template, "JobsOutOfMemory")
    assert phrase.startswith('"') and phrase.endswith('"')  # one quoted term: the exact phrase
    assert phrase.strip('"') in done["error"], done


def test_log_groups_keep_logs_as_long_as_the_parameter_says(template):
    groups = of_type(template, "AWS::Logs::LogGroup")
    assert len(groups) == 3  # the API's, the job workers', the large-request service's
    assert all(g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups.values())


def test_the_dashboard_names_only_what_the_stack_has(template):
    (dashboard,) = of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}]+)\}", body))

    named = {name.split(".")[0] for name in names if not name.startswith("AWS::")}
    assert named <= set(template["Resources"])
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    titles = " ".join(widget["properties"]["title"] for widget in widgets)
    for subject in ("API", "function", "Jobs", "workers"):
        assert subject in titles

