"""Work that outlives the request that asked for it (deleting a large project takes longer than
API Gateway's 29 seconds).

`start(task, **arguments)` runs a registered task:
- on AWS (`lambda`), by invoking this same function asynchronously with a task event, which
  `dispatching(app)` recognizes and runs instead of an API request; Lambda retries a failed
  asynchronous invocation twice, so every task must be safe to run again;
- in the local stack (`thread`), on a daemon thread of the API process;
- in the tests (`inline`), at once, before the request answers.
`QFC_BACKGROUND_TASKS` chooses; by default `lambda` inside Lambda and `thread` elsewhere.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from functools import cache
from typing import Any

from chalicelib.config import settings
from chalicelib.observability import logger

TASK_KEY = "qfc_background_task"
_TASKS: dict[str, Callable[..., None]] = {}


def task(function: Callable[..., None]) -> Callable[..., None]:
    """Register `function` as a task under its name, unique among the tasks: the name travels in
    a task event, so it stays the same when the function's module moves."""
    if _TASKS.setdefault(function.__name__, function) is not function:
        raise ValueError(f"Another background task is named {function.__name__}")
    return function


def _name_of(function: Callable[..., None]) -> str:
    return function.__name__


def _mode() -> str:
    configured = settings.background_tasks
    if configured != "auto":
        return configured
    return "lambda" if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") else "thread"


@cache
def _lambda_client(region: str):
    import boto3  # on first use, as every client (adapters.aws)

    return boto3.client("lambda", region_name=region)


def run(name: str, arguments: dict[str, Any]) -> None:
    # A task event queued by an earlier version names its task `<module>.<name>`: it still runs.
    name = name.rsplit(".", 1)[-1]
    try:
        _TASKS[name](**arguments)
    except Exception:
        logger.exception("Background task failed", extra={"task": name})
        raise


def start(function: Callable[..., None], **arguments: Any) -> None:
    name = _name_of(function)
    if name not in _TASKS:
        raise ValueError(f"{name} is not a registered background task")
    mode = _mode()
    if mode == "inline":
        run(name, arguments)
    elif mode == "thread":
        threading.Thread(target=run, args=(name, arguments), daemon=True, name=name).start()
    else:
        _lambda_client(settings.region).invoke(
            FunctionName=os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            InvocationType="Event",
            Payload=json.dumps({TASK_KEY: name, "arguments": arguments}).encode(),
        )


def dispatching(app: Callable[[dict, Any], dict]) -> Callable[[dict, Any], dict]:
    """The Lambda entry point: a task event runs its task, anything else goes to the API."""

    def handler(event: dict, context: Any) -> dict:
        if isinstance(event, dict) and TASK_KEY in event:
            run(event[TASK_KEY], event.get("arguments") or {})
            return {"task": event[TASK_KEY], "done": True}
        return app(event, context)

    return handler
