"""The local AWS stand-in: moto's server, made faithful where the local stack needs it.

    python -m devstack.aws_standin -H 127.0.0.1 -p 5000

Its state survives restarts through moto's recorder, which replays the recorded requests at the
next start (reference/local-stack.md). For that to hold: only requests that change what is
stored are recorded (no reads, no queue traffic: job messages are work in progress, and the
worker re-announces waiting jobs at start), and S3 draws its version and upload ids from a
random stream of its own, so what the job worker does with queues in between never shifts them.
"""

import functools
import json
import os
import sys
import threading

import moto.s3.models
from moto.moto_api._internal import mock_random
from moto.moto_api._internal.moto_random import MotoRandom
from moto.moto_api._internal.recorder.models import Recorder
from moto.s3.models import FakeMultipart
from moto.server import main

from .moto_atomic import make_dynamodb_atomic
from .moto_multipart import complete_multipart_uploads_without_a_copy


def serialize_recording() -> None:
    """moto's recorder writes an entry and its newline in two writes, unlocked: concurrent
    requests (parallel part uploads) interleave them and the recording can no longer be
    replayed. One lock keeps every entry on its own line."""
    lock = threading.Lock()
    record = Recorder._record_request

    @functools.wraps(record)
    def locked(self, *args, **kwargs):
        with lock:
            return record(self, *args, **kwargs)

    Recorder._record_request = locked


# S3's own seeded random stream: version ids and multipart upload ids.
S3_RANDOM = MotoRandom()
# Reads, which change nothing stored: not recorded.
DYNAMODB_READS = frozenset({
    "GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables",
    "DescribeTimeToLive", "TransactGetItems", "DescribeContinuousBackups",
})


def give_s3_its_own_randomness() -> None:
    """Seeding moto (`/moto-api/seed`) seeds S3's stream too; S3 draws only from it."""
    seed = mock_random.seed

    @functools.wraps(seed)
    def seed_both(value=None, *args, **kwargs):
        seed(value, *args, **kwargs)
        S3_RANDOM.seed(value)

    mock_random.seed = seed_both
    moto.s3.models.random = S3_RANDOM


def make_upload_ids_replayable() -> None:
    """moto draws multipart upload ids from `os.urandom`, outside its seeded generator, so a
    replay creates the upload under a new id and the recorded parts find nothing. Drawing them
    from the seeded generator makes a replay reproduce them."""
    create = FakeMultipart.__init__

    @functools.wraps(create)
    def seeded(self, *args, **kwargs):
        create(self, *args, **kwargs)
        self.id = S3_RANDOM.get_random_string(length=60)

    FakeMultipart.__init__ = seeded


def changes_state(request) -> bool:
    target = request.headers.get("X-Amz-Target", "")
    if target.startswith("AmazonSQS") or "sqs" in request.headers.get("Authorization", "").lower():
        return False
    if target.startswith("DynamoDB_"):
        return target.split(".", 1)[-1] not in DYNAMODB_READS
    return request.method not in ("GET", "HEAD")


def record_only_changes(journal_path: str | None) -> None:
    """Record what changes state; with `journal_path` (QFC_AWS_REQUEST_JOURNAL), also note every
    request there, bodies left out: a witness of what clients asked, for tests and debugging."""
    record = Recorder._record_request
    lock = threading.Lock()

    @functools.wraps(record)
    def record_changes(self, request, *args, **kwargs):
        if journal_path:
            entry = {"method": request.method, "url": request.raw_url, "headers": dict(request.headers)}
            with lock, open(journal_path, "a") as journal:
                journal.write(json.dumps(entry) + "\n")
        if changes_state(request):
            return record(self, request, *args, **kwargs)
        return None

    Recorder._record_request = record_changes


if __name__ == "__main__":
    make_dynamodb_atomic()
    complete_multipart_uploads_without_a_copy()
    serialize_recording()
    record_only_changes(os.environ.get("QFC_AWS_REQUEST_JOURNAL"))
    give_s3_its_own_randomness()
    make_upload_ids_replayable()
    sys.exit(main(sys.argv[1:]))
