"""The environment the API function and the job workers run with: the same variables
(`chalicelib.config` reads them), so a worker in AWS sees what the local worker sees."""

from __future__ import annotations

from chalicelib.adapters import job_queue as queue

from .cfn import Json, ref
from .parameters import table_prefix_value
from .storage import BUCKET, JOBS_DEAD_LETTER_QUEUE, JOBS_QUEUE

# How long a job may run before its worker stops it, and how much memory its QGIS process may
# use: below the queue's visibility timeout and the task's memory.
JOB_TIMEOUT_SECONDS = 600
JOB_MEMORY_MB = 3000
assert JOB_TIMEOUT_SECONDS < queue.VISIBILITY_TIMEOUT_SECONDS


def service_environment(service: str) -> dict[str, Json]:
    """What every part of the service reads; `service` names it in logs and metrics."""
    return {
        "QFC_TABLE_PREFIX": table_prefix_value,
        "QFC_BUCKET": ref(BUCKET),
        "QFC_JOBS_QUEUE_URL": ref(JOBS_QUEUE),
        "QFC_JOBS_DLQ_URL": ref(JOBS_DEAD_LETTER_QUEUE),
        "QFC_JOB_TIMEOUT_SECONDS": str(JOB_TIMEOUT_SECONDS),
        "QFC_JOB_MEMORY_MB": str(JOB_MEMORY_MB),
        "POWERTOOLS_SERVICE_NAME": service,
        # The function has no X-Ray tracing (no TracingConfig): not loading the tracer saves a
        # sizeable part of a cold start (bench/README.md, cold_start).
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
