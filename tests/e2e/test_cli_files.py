"""The unmodified qfieldcloud-cli 0.18.0 syncing a project's files with the local stack."""

import hashlib
import shutil

import pytest
import requests
from qfieldcloud_sdk.utils import calc_etag

from tests import shared_data
from tests.e2e.stack import LocalStack

pytestmark = pytest.mark.e2e
FILES = ["project.qgs", "data/points.csv", "DCIM/photo é 1.jpg", "big.bin"]
MIB = 1024 * 1024


def ok(result):
    assert result.returncode == 0 and not result.http_error, result.output
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fx")
    shutil.copy(shared_data.testdata() / "app" / "self_contained.qgs", root / "project.qgs")
    (root / "data").mkdir()
    (root / "data" / "points.csv").write_text("id,x,y\n1,7.1,46.2\n2,7.2,46.3\n")
    (root / "DCIM").mkdir()
    shutil.copy(shared_data.testdata() / "app" / "DCIM" / "1.jpg", root / "DCIM" / "photo é 1.jpg")
    block = hashlib.sha256(b"big").digest() * 32768  # 1 MiB
    (root / "big.bin").write_bytes(block * 20)
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x").write_text("never sent")
    (root / "notes.txt~").write_text("never sent")
    return root


def test_upload_list_download_delete_with_the_cli(stack, fixture_dir, tmp_path):
    token = stack.login("alice", "pw-alice-secret")
    cli = lambda *args: stack.cli(*args, token=token)  # noqa: E731
    pid = ok(cli("--json", "create-project", "files_proj")).json()["id"]

    uploaded = ok(cli("upload-files", pid, str(fixture_dir)))
    assert "Upload finished after uploading 4." in uploaded.stderr
    assert "failed to upload" not in uploaded.output

    listed = ok(cli("--json", "list-files", pid)).json()
    assert sorted(item["name"] for item in listed) == sorted(FILES)
    for item in listed:
        local = fixture_dir / item["name"]
        assert item["md5sum"] == calc_etag(str(local)), item["name"]
        assert item["size"] == local.stat().st_size and isinstance(item["size"], int)
        assert item["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
        assert item["last_modified"]
    assert next(i for i in listed if i["name"] == "big.bin")["md5sum"].endswith("-3")

    assert "Nothing to upload." in ok(cli("upload-files", pid, str(fixture_dir))).stderr

    target = tmp_path / "dl"
    target.mkdir()
    assert "Downloaded 4 file(s)." in ok(cli("download-files", pid, str(target))).output
    downloaded = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert downloaded == sorted(FILES)
    for name in FILES:
        assert (target / name).read_bytes() == (fixture_dir / name).read_bytes(), name
    again = ok(cli("download-files", pid, str(target)))
    assert again.stdout.count("Already present locally. Download skipped.") == 4

    (target / "data" / "points.csv").write_text("changed locally\n")
    restored = ok(cli("download-files", "--filter", "data/*", pid, str(target)))
    assert "Downloaded 1 file(s)." in restored.output
    assert (target / "data" / "points.csv").read_bytes() == (fixture_dir / "data/points.csv").read_bytes()

    deleted = ok(cli("delete-file", pid, "DCIM/photo é 1.jpg"))
    assert 'Successfully deleted file "DCIM/photo é 1.jpg"' in deleted.output
    globbed = ok(cli("delete-files", pid, "*.csv", "nomatch*"))
    assert "Glob pattern 'nomatch*' did not match any files." in globbed.output
    assert "1 file(s) deleted, 0 file(s) failed to delete" in globbed.output
    remaining = sorted(item["name"] for item in ok(cli("--json", "list-files", pid)).json())
    assert remaining == ["big.bin", "project.qgs"]

    subscription = ok(cli("current-subscription", "alice")).output
    assert "Used storage:" in subscription and "Total storage:" in subscription
    used = ok(cli("--json", "current-subscription", "alice")).json()["storage_used_bytes"]
    assert used == sum((fixture_dir / name).stat().st_size for name in remaining)


def test_the_direct_upload_limit_on_a_stack_that_sets_it(tmp_path):
    """Below QFC_MAX_DIRECT_UPLOAD_BYTES the clients' POST works; above it, 413 names the
    presigned flow, and that flow takes the file."""
    stack = LocalStack(tmp_path / "data", extra_env={"QFC_MAX_DIRECT_UPLOAD_BYTES": str(MIB)})
    stack.start()
    try:
        assert stack.createuser("erin", "pw-erin-secret").returncode == 0
        token = stack.login("erin", "pw-erin-secret")
        pid = ok(stack.cli("--json", "create-project", "limited", token=token)).json()["id"]
        folder = tmp_path / "fx"
        folder.mkdir()
        (folder / "small.bin").write_bytes(b"s" * (MIB // 2))
        (folder / "large.bin").write_bytes(b"L" * (2 * MIB))

        result = stack.cli("upload-files", pid, str(folder), token=token)
        assert 'File "large.bin" failed to upload' in result.output
        assert "413" in result.output and "payload_too_large" in result.output
        assert f"uploads/{pid}/" in result.output
        listed = ok(stack.cli("--json", "list-files", pid, token=token)).json()
        assert [item["name"] for item in listed] == ["small.bin"]

        headers = {"Authorization": f"Token {token}"}
        session = requests.post(f"{stack.url}uploads/{pid}/", headers=headers, timeout=30,
                                json={"name": "large.bin", "size": 2 * MIB}).json()
        for part in session["parts"]:
            assert requests.put(part["url"], data=b"L" * part["size"], timeout=60).status_code == 200
        done = requests.post(f"{stack.url}uploads/{pid}/{session['upload_id']}/complete/",
                             headers=headers, timeout=60)
        assert done.status_code == 201
        assert done.json()["md5sum"] == calc_etag(str(folder / "large.bin"))
        assert "Nothing to upload." in ok(stack.cli("upload-files", pid, str(folder), token=token)).stderr
    finally:
        assert stack.stop() == 0
