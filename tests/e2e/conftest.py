import signal
import subprocess

import pytest

from tests.e2e.stack import LocalStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One local stack for a whole test module, with users alice and bob."""
    local = LocalStack(tmp_path_factory.mktemp("stack"))
    local.start()
    for name in ("alice", "bob"):
        created = local.createuser(name, f"pw-{name}-secret", "--email", f"{name}@example.com")
        assert created.returncode == 0, created.stderr
    yield local
    assert local.stop() == 0, "".join(local.output)


class Workers:
    """The job workers a test starts on the module's stack: `workers()` starts one, `kill(worker)`
    kills one as a crash would. At the end of the test every other one is stopped, and must end
    well (exit code 0): a worker that failed fails the test."""

    def __init__(self, stack: LocalStack):
        self.stack = stack
        self.started: list[subprocess.Popen] = []
        self.killed: set[int] = set()

    def __call__(self) -> subprocess.Popen:
        self.started.append(self.stack.start_worker())
        return self.started[-1]

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL, with the QGIS child it may be running (which dies with its worker)."""
        self.killed.add(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        failures = []
        for process in self.started:
            if process.pid not in self.killed:
                try:
                    self.stack.stop_worker(process)
                except AssertionError as failure:  # the others are stopped all the same
                    failures.append(str(failure))
        assert not failures, "\n".join(failures)


@pytest.fixture
def worker(stack):
    """`worker()` starts a job worker of the test's own on the module's stack (Workers)."""
    workers = Workers(stack)
    try:
        yield workers
    finally:
        workers.stop_all()
