"""QField's uploads may go past the storage quota, but only by a bounded grace margin: anyone can
send QField's User-Agent, and that used to lift the quota altogether (docs/security.md)."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.files_helpers import stored_state, upload

QUOTA = 1_000_000
FILE = 300_000


@pytest.fixture
def qfield(users, override_settings):
    override_settings(default_storage_quota_bytes=QUOTA, quota_grace_percent=10)
    client = users("alice").as_anonymous()
    client.user_agent = "qfield|3.4.0|3.4.0|abc|"
    return client.login("alice", PASSWORD)


def _used() -> int:
    from chalicelib.models import User

    return int(User.get("alice").storage_used_bytes)


def test_a_qfield_user_agent_gets_a_grace_margin_and_then_402(qfield):
    pid = qfield.create_project("field")["id"]
    statuses = [upload(qfield, pid, f"DCIM/{n}.jpg", b"x" * FILE).status for n in range(10)]
    # 3 files fit the quota (900 KB); the 4th only within the 10 % grace (1.2 MB > 1.1 MB: no).
    assert statuses == [201] * 3 + [402] * 7
    assert _used() <= QUOTA * 1.1
    small = upload(qfield, pid, "DCIM/small.jpg", b"x" * 150_000)
    assert small.status == 201 and QUOTA < _used() <= QUOTA * 1.1  # past the quota, inside grace
    reply = upload(qfield, pid, "DCIM/more.jpg", b"x" * 60_000)
    assert (reply.status, reply.code) == (402, "over_quota")
    state = stored_state(pid)
    assert len(state["s3"]) == 4 and state["owner_bytes"] == _used()


def test_other_clients_get_no_grace(qfield, users):
    sdk = qfield.as_anonymous()
    sdk.user_agent = "sdk|py|tests"
    sdk = sdk.login("alice", PASSWORD)
    pid = sdk.create_project("office")["id"]
    assert [upload(sdk, pid, f"{n}.bin", b"x" * FILE).status for n in range(4)] == [201] * 3 + [402]
    assert upload(sdk, pid, "a.bin", b"x" * 150_000).status == 402
    assert _used() == 3 * FILE


def test_the_presigned_flow_applies_the_same_margin(qfield):
    pid = qfield.create_project("big")["id"]
    reply = qfield.post(f"uploads/{pid}/", json={"name": "DCIM/a.bin", "size": 1_050_000})
    assert reply.status == 201
    reply = qfield.post(f"uploads/{pid}/", json={"name": "DCIM/b.bin", "size": 1_150_000})
    assert (reply.status, reply.code) == (402, "over_quota")


@pytest.mark.parametrize("second", ["direct", "presigned"])
def test_two_uploads_that_each_fit_but_not_together_one_is_refused(users, override_settings, monkeypatch,
                                                                  second):
    """Both uploads passed every check and read the owner's counter before either counts its
    bytes (held at a barrier right before the reservation): one lands, the other gets 402, and
    the counter is what is stored."""
    import threading

    import requests

    from chalicelib.rules import quota
    from tests.waiting import DEADLINE_SECONDS

    override_settings(default_storage_quota_bytes=QUOTA, quota_grace_percent=10)
    alice = users("alice")
    pid = alice.create_project("race")["id"]
    size = QUOTA * 6 // 10
    started = None
    if second == "presigned":
        started = alice.post(f"uploads/{pid}/", json={"name": "b.bin", "size": size}).json()
        for part in started["parts"]:
            assert requests.put(part["url"], data=b"b" * part["size"], timeout=30).ok
    both_checked = threading.Barrier(2, timeout=DEADLINE_SECONDS)
    reserve = quota.reserve

    def reserve_together(*args, **kwargs):
        both_checked.wait()
        return reserve(*args, **kwargs)

    monkeypatch.setattr(quota, "reserve", reserve_together)
    replies = {}
    uploads = {
        "a": lambda: upload(alice, pid, "a.bin", b"a" * size),
        "b": (lambda: upload(alice, pid, "b.bin", b"b" * size)) if second == "direct"
        else lambda: alice.post(f"uploads/{pid}/{started['upload_id']}/complete/"),
    }
    threads = [threading.Thread(target=lambda name=name: replies.update({name: uploads[name]()}))
               for name in uploads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(reply.status for reply in replies.values()) == [201, 402]
    (landed,) = [name for name, reply in replies.items() if reply.status == 201]
    assert [f["name"] for f in alice.get(f"files/{pid}/").json()] == [f"{landed}.bin"]
    state = stored_state(pid)
    assert _used() == size == state["project_bytes"] and len(state["s3"]) == 1
