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


@pytest.fixture
def worker(stack):
    """`worker()` starts a job worker of the test's own on the module's stack; each is stopped
    at the end of the test if still alive."""
    workers: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        workers.append(stack.start_worker())
        return workers[-1]

    yield start
    for process in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
