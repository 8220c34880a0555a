"""The job worker: `python -m job_containers.worker` long-polls the jobs queue and runs one job
at a time. The same code runs beside `./dev run` and as the Fargate service in AWS.

For each message: take the project's lease (one job per project at a time; a busy project's
job is offered again a little later, as a new message, so waiting spends none of the message's
receives), claim the job (a redelivered message of a job that is running or done does nothing),
run it while renewing the lease, then delete the message. Every so often the worker also
sweeps: jobs whose worker died (lease lapsed) are failed and what they took is put back, and
messages that landed in the dead-letter queue fail their jobs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
import time
import uuid

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib import config
from chalicelib.adapters import job_queue
from chalicelib.config import settings
from chalicelib.models import Job
from chalicelib.models.jobs import JobStatus
from chalicelib.observability import logger, metrics, publish_metrics
from chalicelib.services import jobs
from job_containers import isolation, runner, sandbox

SWEEP_EVERY_SECONDS = 15


class Heartbeat:
    """Renews the lease while a job runs; remembers if it was lost."""

    def __init__(self, job: Job, worker: str):
        self.job, self.worker = job, worker
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        interval = max(settings.job_lease_seconds / 3, 0.5)
        while not self._done.wait(interval):
            if not jobs.renew_lease(self.job, self.worker, settings.job_lease_seconds):
                self.lost.set()
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()


class Worker:
    def __init__(self) -> None:
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.stopping = threading.Event()
        self.busy = False  # running a job or a sweep (then a stop waits for its end)
        self._last_sweep = 0.0

    def handle(self, message: job_queue.Message) -> None:
        job = jobs.find(message.job_id) if message.job_id else None
        if job is None or job.status not in (JobStatus.PENDING, JobStatus.QUEUED):
            job_queue.delete(message)  # done, running elsewhere, or abandoned (the sweeper's)
            return
        if not jobs.acquire_lease(job, self.id, settings.job_lease_seconds):
            job_queue.send(job.id, delay_seconds=settings.job_busy_retry_seconds)
            job_queue.delete(message)
            return
        self.busy = True
        try:
            if jobs.claim(job):
                self._run(job)
        finally:
            self.busy = False
            jobs.release_lease(job)
        job_queue.delete(message)

    def _run(self, job: Job) -> None:
        logger.append_keys(job_id=job.id, job_type=job.type, project_id=job.project_id)
        metrics.add_dimension(name="type", value=job.type)
        metrics.add_metric(name="JobsStarted", unit=MetricUnit.Count, value=1)
        started = time.monotonic()
        try:
            with Heartbeat(job, self.id) as heartbeat:
                runner.run(job, should_stop=heartbeat.lost.is_set)
        finally:
            with contextlib.suppress(Job.DoesNotExist):  # purged with its project meanwhile
                job.refresh(consistent_read=True)
            outcome = "JobsFinished" if job.status == JobStatus.FINISHED else "JobsFailed"
            metrics.add_metric(name=outcome, unit=MetricUnit.Count, value=1)
            metrics.add_metric(name="JobSeconds", unit=MetricUnit.Seconds,
                               value=time.monotonic() - started)
            publish_metrics()
            logger.info("Job done", extra={"status": job.status, "error": job.error})
            logger.remove_keys(["job_id", "job_type", "project_id"])

    def sweep(self, *, starting: bool = False) -> None:
        """Jobs whose worker stopped, jobs whose messages kept failing, and waiting jobs whose
        messages were lost (at start: all waiting jobs, which then need no message to be kept)."""
        self.busy = True
        try:
            self._sweep(starting)
        finally:
            self.busy = False

    def _sweep(self, starting: bool) -> None:
        jobs.announce_waiting(0 if starting else job_queue.VISIBILITY_TIMEOUT_SECONDS)
        for job in jobs.in_flight():
            if jobs.is_abandoned(job):
                runner.abandon(job)
        for message in job_queue.receive_dead_letters():
            job = jobs.find(message.job_id) if message.job_id else None
            if job is not None and not job.is_final:
                runner.fail(job, f"The job could not be run: it failed {job_queue.MAX_RECEIVES} times.",
                            final=True)
            job_queue.delete(message, dead_letter=True)

    def serve(self) -> None:
        logger.info("Job worker started", extra={"worker": self.id})
        sandbox.worker_process_guard()
        if not sandbox.identity().separate:
            logger.warning("The job worker is not root: QGIS jobs run as its own user, guarded by the"
                           " source checks and an empty environment only (docs/security.md).")
        sandbox.remove_folders_of_killed_workers()
        isolation.prepare_a_child()
        self._safely(lambda: self.sweep(starting=True))
        self._last_sweep = time.monotonic()
        while not self.stopping.is_set():
            if time.monotonic() - self._last_sweep > SWEEP_EVERY_SECONDS:
                self._safely(self.sweep)
                self._last_sweep = time.monotonic()
            for message in self._safely(lambda: job_queue.receive(settings.job_poll_seconds)) or []:
                self._safely(lambda message=message: self.handle(message))
                if self.stopping.is_set():
                    break
                isolation.prepare_a_child()

    def _safely(self, action):
        """A failing AWS call must not end the worker: log it, pause, go on."""
        try:
            return action()
        except Exception:
            logger.exception("Worker step failed")
            self.stopping.wait(1)
            return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m job_containers.worker", description=__doc__)
    parser.parse_args(argv)
    config.reload()
    worker = Worker()

    def stop(signum, frame) -> None:
        """Between jobs, at once (a long poll may have many seconds to go); during a job, once it
        is done (ECS waits for that: the task's stop timeout). A second signal changes nothing: a
        Ctrl-C reaches the whole process group, and the local stack then stops its worker too."""
        if worker.stopping.is_set():
            return
        worker.stopping.set()
        if not worker.busy:
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
