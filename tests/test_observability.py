"""Logs carry the request's correlation id, and every request is counted by route and status in
CloudWatch's embedded metric format (printed to the function's log, as Lambda does)."""

import io
import json
import logging


def _json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def test_requests_are_counted_by_route_and_status(users, capfd, monkeypatch):
    alice = users("alice")
    capfd.readouterr()
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    assert alice.get("projects/").status == 200
    assert alice.get("projects/not-a-uuid/").status == 400
    emitted = [line for line in _json_lines(capfd.readouterr().out) if "_aws" in line]
    seen = {(line["route"], line["status"], tuple(line["Requests"])) for line in emitted}
    assert ("GET /api/v1/projects", "200", (1.0,)) in seen
    assert ("GET /api/v1/projects/{project_id}", "400", (1.0,)) in seen
    assert all(line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "QFieldCloud" for line in emitted)


def test_metrics_disabled_locally_print_nothing(users, capfd):
    alice = users("alice")
    capfd.readouterr()
    assert alice.get("projects/").status == 200
    assert not [line for line in _json_lines(capfd.readouterr().out) if "_aws" in line]


def test_log_lines_carry_the_api_gateway_request_id(users):
    from chalicelib.observability import logger

    alice = users("alice")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)  # the JSON lines the function logs
    logger.addHandler(handler)
    try:
        assert alice.get("projects/not-a-uuid/").status == 400  # logged as a refused request
    finally:
        logger.removeHandler(handler)
    (refused,) = [line for line in _json_lines(stream.getvalue()) if line["message"] == "Request refused"]
    assert refused["correlation_id"] and refused["function_request_id"]
    assert (refused["route"], refused["status"], refused["code"]) == (
        "/api/v1/projects/{project_id}", 400, "validation_error")


def _modules_after_importing_app(**environment: str) -> set[str]:
    """The modules a fresh interpreter holds once it imported the app in `environment`."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    probe = "import sys, app; print('\\n'.join(sys.modules))"
    run = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parent.parent,
                         env={**os.environ, **environment}, capture_output=True, text=True, check=True)
    return set(run.stdout.split())


def test_the_xray_sdk_is_loaded_only_when_tracing_is_on():
    assert "aws_xray_sdk" not in _modules_after_importing_app()  # outside Lambda: no tracing
    assert "aws_xray_sdk" not in _modules_after_importing_app(LAMBDA_TASK_ROOT="/var/task",
                                                               POWERTOOLS_TRACE_DISABLED="true")
    assert "aws_xray_sdk" in _modules_after_importing_app(LAMBDA_TASK_ROOT="/var/task")


def test_importing_the_app_leaves_the_garbage_collector_on():
    """The collector is held off while the app is built (app.py), never after."""
    import subprocess
    import sys
    from pathlib import Path

    probe = "import gc, app; print(gc.isenabled(), gc.get_freeze_count() > 0)"
    run = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parent.parent,
                         capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["True", "True"]


def test_logs_and_metrics_name_the_part_of_the_service_that_writes_them():
    """The API and a job worker run the same code; the deployment names each."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    probe = ("from chalicelib.observability import logger, metrics;"
             " print(logger.service, metrics.service)")
    for name in ("qfc-worker", "qfc-api"):
        run = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parent.parent,
                             env={**os.environ, "POWERTOOLS_SERVICE_NAME": name},
                             capture_output=True, text=True, check=True)
        assert run.stdout.split() == [name, name]
