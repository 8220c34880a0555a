"""The local AWS stand-in: moto's server, made faithful where the local stack needs it.

    python -m devstack.aws_standin -H 127.0.0.1 -p 5000
"""

import functools
import sys
import threading

from moto.moto_api._internal import mock_random
from moto.moto_api._internal.recorder.models import Recorder
from moto.s3.models import FakeMultipart
from moto.server import main

from .moto_atomic import make_dynamodb_atomic


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


def make_upload_ids_replayable() -> None:
    """moto draws multipart upload ids from `os.urandom`, outside its seeded generator, so a
    replay creates the upload under a new id and the recorded parts find nothing. Drawing them
    from the seeded generator makes a replay reproduce them."""
    create = FakeMultipart.__init__

    @functools.wraps(create)
    def seeded(self, *args, **kwargs):
        create(self, *args, **kwargs)
        self.id = mock_random.get_random_string(length=60)

    FakeMultipart.__init__ = seeded


if __name__ == "__main__":
    make_dynamodb_atomic()
    serialize_recording()
    make_upload_ids_replayable()
    sys.exit(main(sys.argv[1:]))
