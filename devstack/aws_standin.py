"""The local AWS stand-in: moto's server, made faithful where the local stack needs it.

    python -m devstack.aws_standin -H 127.0.0.1 -p 5000

With `QFC_AWS_STATE_DIR` its state survives restarts (devstack/aws_state.py): before it listens,
it loads the snapshot kept there and replays the journal of what changed since, and compacts
them into a new snapshot; while it serves, each request that changes what is stored goes into
the journal (no reads, no queue traffic: job messages are work in progress, and the worker
re-announces waiting jobs at start), a large body as a file of its own. S3 draws its version and
upload ids from a random stream of its own, seeded by the stack at every start (the journal's
first entry), so what the job worker does with queues in between never shifts them.
"""

from __future__ import annotations

import functools
import gc
import io
import json
import os
import sys
import threading
from pathlib import Path

import moto.backends
import moto.core.responses
import moto.s3.models
from moto.moto_api._internal import mock_random
from moto.moto_api._internal.moto_random import MotoRandom
from moto.moto_api._internal.recorder.models import Recorder
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3.models import FakeMultipart
from moto.server import main

from .aws_state import StateDirectory, objects_read_body_files, offer_body, request_body
from .lifetime import end_with_the_stack
from .moto_atomic import make_dynamodb_atomic
from .moto_multipart import complete_multipart_uploads_without_a_copy
from .s3_gate import DENIED, header_signature_is_valid, presigned_signature_is_valid, signs_its_body

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


def introspect_moto_once() -> None:
    """moto lists its own package directory (a `stat` per service, under a global lock) and
    inspects the handler class's methods on every request, to answers that never change while
    it runs: a fifth of what a small DynamoDB request cost here. Each is now found once."""
    modules = frozenset(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules
    moto.core.responses.method_names_from_class = functools.cache(moto.core.responses.method_names_from_class)


def stamp_request_ids_only_where_they_go() -> None:
    """moto writes its request id into every response body with a regular expression whose
    lookbehind is tried at each character, JSON bodies included, where it never matches: a
    millisecond for a page of 50 files of the files list. Only a body with `<RequestId>` is
    searched now; the headers are stamped as before."""
    enrich = moto.core.responses.BaseResponse._enrich_response

    def enrich_where_needed(headers, body):
        if isinstance(body, str) and "<RequestId>" in body:
            return enrich(headers, body)
        headers, _ = enrich(headers, "")
        return headers, body

    moto.core.responses.BaseResponse._enrich_response = staticmethod(enrich_where_needed)


def changes_state(request) -> bool:
    target = request.headers.get("X-Amz-Target", "")
    if target.startswith("AmazonSQS") or "sqs" in request.headers.get("Authorization", "").lower():
        return False
    if target.startswith("DynamoDB_"):
        return target.split(".", 1)[-1] not in DYNAMODB_READS
    return request.method not in ("GET", "HEAD")


def record_changes(state: StateDirectory | None, witness_path: str | None) -> None:
    """moto hands every request to its recorder before handling it: what changes state goes into
    the state's journal; with `witness_path` (QFC_AWS_REQUEST_JOURNAL) every request is also
    noted there, bodies left out: a witness of what clients asked, for tests and debugging."""
    lock = threading.Lock()

    def record(self, request, body=None):
        offer_body(None, None)
        if request.raw_path.startswith("/moto-api/recorder/"):
            return
        if state is not None and state.journal.replaying:
            return
        if witness_path:
            entry = {"method": request.method, "url": request.raw_url, "headers": dict(request.headers)}
            with lock, open(witness_path, "a") as witness:
                witness.write(json.dumps(entry) + "\n")
        if state is not None and changes_state(request):
            state.journal.append(state.journal.entry(request, body if body is not None
                                                     else request_body(request)))

    Recorder._record_request = record


def verify_signatures(access_key: str, secret_key: str) -> None:
    """Only signed requests reach moto, as only signed requests reach AWS: a presigned URL whose
    key, expiry or method was changed, a request signed with another secret or not signed at all
    gets S3's 403 `AccessDenied`, on loopback too, so that a signing bug shows here first.
    `/moto-api/` (the stack's own control of the stand-in: its seed) is moto's, not AWS's."""
    serve = DomainDispatcherApplication.__call__

    @functools.wraps(serve)
    def serve_signed(self, environ, start_response):
        target = environ.get("REQUEST_URI") or environ.get("RAW_URI") or "/"
        raw_path, _, raw_query = target.partition("?")
        if raw_path.startswith("/moto-api/"):
            return serve(self, environ, start_response)
        # A browser's CORS preflight carries no credentials by design; S3 answers it from the
        # bucket's CORS rules (the web console's uploads PUT their parts from another origin).
        if environ["REQUEST_METHOD"] == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
            return serve(self, environ, start_response)
        headers = {key[5:].replace("_", "-"): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        headers.update({key.replace("_", "-"): environ[key] for key in ("CONTENT_TYPE", "CONTENT_LENGTH")
                        if environ.get(key)})
        host, method = headers.get("HOST", ""), environ["REQUEST_METHOD"]
        if "X-Amz-Signature=" in raw_query:
            valid = presigned_signature_is_valid(method, host, raw_path, raw_query, headers,
                                                 access_key, secret_key)
        else:
            body = None
            if signs_its_body(headers):  # DynamoDB's and SQS's small JSON bodies, read and put back
                body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                environ["wsgi.input"] = io.BytesIO(body)
            valid = header_signature_is_valid(method, host, raw_path, raw_query, headers, body,
                                              access_key, secret_key)
        if valid:
            return serve(self, environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "application/xml"),
                                         ("Content-Length", str(len(DENIED)))])
        return [DENIED]

    DomainDispatcherApplication.__call__ = serve_signed


def start() -> int:
    end_with_the_stack()
    make_dynamodb_atomic()
    introspect_moto_once()
    stamp_request_ids_only_where_they_go()
    complete_multipart_uploads_without_a_copy()
    give_s3_its_own_randomness()
    make_upload_ids_replayable()
    objects_read_body_files()
    state = None
    if os.environ.get("QFC_AWS_STATE_DIR"):
        legacy = os.environ.get("QFC_AWS_LEGACY_RECORDING")
        state = StateDirectory(Path(os.environ["QFC_AWS_STATE_DIR"]), Path(legacy) if legacy else None)
    record_changes(state, os.environ.get("QFC_AWS_REQUEST_JOURNAL"))
    if state is not None:
        state.restore()  # (the journal's requests were checked when they first came)
    if os.environ.get("QFC_AWS_VERIFY_SIGNATURES") == "1":
        verify_signatures(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    collect_garbage_seldom()
    main(sys.argv[1:])
    return 0


def collect_garbage_seldom() -> None:
    """moto holds every item and object as Python objects, millions for a large state; Python's
    cycle collector walks them all at each full collection, which made a Query wait hundreds of
    milliseconds now and then. What was restored is moved out of its sight (`gc.freeze`), and
    full collections come less often (nothing here depends on them: moto's data has no cycles
    to free)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


if __name__ == "__main__":
    sys.exit(start())
