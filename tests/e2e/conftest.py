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
