"""File names: one Unicode form, no bidi controls, and no name whose S3 key would be too long."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.files_helpers import stored_state, upload

NFD, NFC = "cafe\u0301/re\u0301sume\u0301.txt", "caf\u00e9/r\u00e9sum\u00e9.txt"


def test_names_typed_on_two_systems_are_one_file(alice, pid):
    assert upload(alice, pid, NFD, b"mac").status == 201
    reply = upload(alice, pid, NFC, b"windows")
    assert reply.status == 201 and reply.json()["name"] == NFC
    listing = alice.get(f"files/{pid}/").json()
    assert [(f["name"], len(f["versions"])) for f in listing] == [(NFC, 2)]
    for name in (NFD, NFC):
        assert alice.get(f"files/{pid}/{quote(name)}/").status == 302
        assert alice.get(f"files/metadata/{pid}/{quote(name)}/").json()["name"] == NFC
    assert alice.delete(f"files/{pid}/{quote(NFD)}/").status == 204
    assert alice.get(f"files/{pid}/").json() == []


@pytest.mark.parametrize("control", ["\u202e", "\u202a", "\u2066", "\u2069", "\u200e", "\u200f", "\u061c"])
def test_bidi_control_characters_are_refused(alice, pid, control):
    before = stored_state(pid)
    reply = upload(alice, pid, f"invoice{control}fdp.exe", b"x")
    assert (reply.status, reply.code) == (400, "validation_error")
    assert "direction" in reply.json()["message"]
    assert stored_state(pid) == before


@pytest.mark.parametrize("name", ["\U0001d11e" * 250, "DCIM/" + "\U0001f600" * 233, "\U0001f600" * 240])
def test_names_whose_s3_key_would_pass_1024_bytes_are_refused(alice, pid, name):
    before = stored_state(pid)
    reply = upload(alice, pid, name, b"x")
    assert (reply.status, reply.code) == (400, "validation_error")
    assert "bytes" in reply.json()["message"]
    reply = alice.post(f"uploads/{pid}/", json={"name": name, "size": 10})
    assert (reply.status, reply.code) == (400, "validation_error")
    assert stored_state(pid) == before


def test_the_longest_name_allowed_still_fits_every_key(alice, pid):
    from chalicelib.adapters import storage
    from chalicelib.rules import file_rules

    name = "\U0001f600" * (file_rules.max_name_bytes() // 4)  # 233 characters of 4 bytes
    assert len(storage.package_key(pid, pid, name).encode()) <= 1024
    assert upload(alice, pid, name, b"x").status == 201
