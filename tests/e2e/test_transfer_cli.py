"""`qfc-transfer` against the real local stack: large uploads and downloads through presigned S3
URLs, resume after an interruption, and errors.

Interruptions are made deterministic by calling the upload/download functions in this process
with a hook that raises KeyboardInterrupt (what Ctrl-C raises) after a given number of parts;
the resumed run is the real command in a subprocess. Which S3 requests a run made is read from
the AWS stand-in's request journal (QFC_AWS_REQUEST_JOURNAL), a witness independent of what the
tool says about itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from qfieldcloud_sdk.utils import calc_etag

from qfc_transfer import download, upload
from qfc_transfer.api import Api
from tests.e2e.stack import CliResult, LocalStack

pytestmark = pytest.mark.e2e

QFC_TRANSFER = Path(sys.executable).parent / "qfc-transfer"
MIB = 1024 * 1024
PART = 8 * MIB
JOURNAL = "aws-requests.jsonl"


@dataclass
class Server:
    stack: LocalStack
    token: str

    def transfer(self, *args: str, token: str | None = None) -> CliResult:
        env = {k: v for k, v in self.stack.env.items() if k != "ENVIRONMENT"}
        env.update(QFIELDCLOUD_URL=self.stack.url, QFIELDCLOUD_TOKEN=token or self.token)
        done = subprocess.run([str(QFC_TRANSFER), "--no-progress", *args], env=env, capture_output=True,
                              text=True, timeout=300, check=False, stdin=subprocess.DEVNULL)
        return CliResult(done.returncode, done.stdout, done.stderr)

    def project(self, name: str) -> str:
        result = self.stack.cli("--json", "create-project", name, token=self.token)
        assert result.returncode == 0 and not result.http_error, result.output
        return result.json()["id"]

    def api(self) -> Api:
        return Api(self.stack.url, self.token)

    @property
    def journal(self) -> Path:
        return self.stack.data_dir / JOURNAL

    def journal_mark(self) -> int:
        return self.journal.stat().st_size

    def s3_requests(self, since: int) -> list[dict]:
        """The requests the AWS stand-in received since `mark`, bodies left out.

        Parsed object by object rather than line by line: moto writes an entry and its newline
        separately, so parallel requests can leave two entries on one line.
        """
        with open(self.journal, "rb") as file:
            file.seek(since)
            text = file.read().decode()
        decoder, entries, position = json.JSONDecoder(), [], 0
        while True:
            while position < len(text) and text[position].isspace():
                position += 1
            if position >= len(text):
                return entries
            entry, position = decoder.raw_decode(text, position)
            entry.pop("body", None)
            entries.append(entry)


def ok(result: CliResult) -> CliResult:
    assert result.returncode == 0, result.output
    assert "Traceback" not in result.output, result.output
    return result


def random_file(path: Path, size: int, seed: int) -> bytes:
    data = random.Random(seed).randbytes(size)
    path.write_bytes(data)
    return data


def interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # what Ctrl-C raises


def reset_peak_memory(pid: int) -> None:
    """Lower the process's VmHWM to its current size (Linux >= 4.0, our own child process).

    Without this the peak of the stack's start-up, some 50 MiB above what it holds once idle,
    would hide any growth smaller than that.
    """
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def vm_hwm_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def part_numbers_put(entries: list[dict]) -> list[int]:
    numbers = []
    for entry in entries:
        query = parse_qs(urlsplit(entry["url"]).query)
        if entry["method"] == "PUT" and "partNumber" in query:
            numbers.append(int(query["partNumber"][0]))
    return numbers


def ranges_got(entries: list[dict]) -> list[str]:
    return [entry["headers"]["Range"] for entry in entries
            if entry["method"] == "GET" and "Range" in entry["headers"]]


def start_server(directory: Path) -> Iterator[Server]:
    stack = LocalStack(directory, extra_env={"QFC_AWS_REQUEST_JOURNAL": str(directory / JOURNAL)})
    stack.start()
    created = stack.createuser("carol", "pw-carol-secret", "--email", "carol@example.com")
    assert created.returncode == 0, created.stderr
    yield Server(stack, stack.login("carol", "pw-carol-secret"))
    assert stack.stop() == 0, "".join(stack.output)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Iterator[Server]:
    """A stack of its own for the memory measurement: nothing large went through it before."""
    yield from start_server(tmp_path_factory.mktemp("transfer-fresh-stack"))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("transfer-stack"))


def test_64_mib_up_and_down_with_the_server_memory_flat(fresh, tmp_path):
    original = tmp_path / "big.bin"
    data = random_file(original, 64 * MIB, seed=64)
    project = fresh.project("transfer_big")
    name = "maps/big file #1.bin"  # a folder, a space and a "#" must survive the URL paths

    reset_peak_memory(fresh.stack.process.pid)
    before = vm_hwm_bytes(fresh.stack.process.pid)
    uploaded = ok(fresh.transfer("upload", project, str(original), name))
    after = vm_hwm_bytes(fresh.stack.process.pid)
    assert after - before < 16 * MIB, f"the API process grew its peak by {(after - before) / MIB:.1f} MiB"

    etag = calc_etag(str(original))
    sha256 = hashlib.sha256(data).hexdigest()
    assert etag.endswith("-8")
    completed = json.loads(uploaded.stdout)
    assert (completed["name"], completed["size"], completed["md5sum"], completed["sha256"]) == (
        name, 64 * MIB, etag, sha256)
    assert not (tmp_path / "big.bin.qfc-upload.json").exists()

    listed = fresh.stack.cli("--json", "list-files", project, token=fresh.token)
    assert listed.returncode == 0 and not listed.http_error, listed.output
    [entry] = [item for item in listed.json() if item["name"] == name]
    assert (entry["size"], entry["md5sum"], entry["sha256"]) == (64 * MIB, etag, sha256)

    copy = tmp_path / "copy.bin"
    downloaded = ok(fresh.transfer("download", "--parallel", "3", project, name, str(copy)))
    assert copy.read_bytes() == data
    assert f"{copy}: {64 * MIB} bytes of {name} (version {completed['version_id']})" in downloaded.stdout
    assert "8 of 8 ranges fetched now" in downloaded.stdout
    assert sorted(os.listdir(tmp_path)) == ["big.bin", "copy.bin"]  # no .part, no state left


def test_an_interrupted_upload_resumes_with_the_missing_parts_only(server, tmp_path):
    local = tmp_path / "survey.gpkg.zip"
    data = random_file(local, 5 * PART + 12_345, seed=2)  # 6 parts, the last one short
    project = server.project("transfer_resume_up")
    state_file = tmp_path / "survey.gpkg.zip.qfc-upload.json"

    landed: list[int] = []

    def ctrl_c_after_two_parts(number: int) -> None:
        landed.append(number)
        if len(landed) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upload.upload(server.api(), project, local, "survey.gpkg.zip", workers=2, show_progress=False,
                      on_part=ctrl_c_after_two_parts)
    saved = json.loads(state_file.read_text())
    assert (saved["project_id"], saved["name"], saved["size"]) == (project, "survey.gpkg.zip", len(data))

    status = requests.get(f"{server.stack.url}uploads/{project}/{saved['upload_id']}/",
                          headers={"Authorization": f"Token {server.token}"}, timeout=30)
    assert status.status_code == 200, status.text
    held = {part["part_number"] for part in status.json()["uploaded_parts"]}
    # Parts in flight at the interruption may still have landed; the server's word is what counts.
    assert set(landed) <= held and len(held) < 6

    mark = server.journal_mark()
    resumed = ok(server.transfer("upload", project, str(local)))
    assert (f"resuming upload {saved['upload_id']}: {len(held)} of 6 parts already uploaded, "
            f"{6 - len(held)} to go") in resumed.stderr
    assert sorted(part_numbers_put(server.s3_requests(mark))) == sorted(set(range(1, 7)) - held)

    completed = json.loads(resumed.stdout)
    assert (completed["size"], completed["md5sum"], completed["sha256"]) == (
        len(data), calc_etag(str(local)), hashlib.sha256(data).hexdigest())
    assert not state_file.exists()


def test_an_upload_whose_session_is_gone_starts_afresh(server, tmp_path):
    local = tmp_path / "again.bin"
    data = random_file(local, PART + 1, seed=3)
    project = server.project("transfer_gone")
    state_file = tmp_path / "again.bin.qfc-upload.json"
    with pytest.raises(KeyboardInterrupt):
        upload.upload(server.api(), project, local, "again.bin", workers=1, show_progress=False,
                      on_part=interrupt)
    upload_id = json.loads(state_file.read_text())["upload_id"]
    aborted = requests.delete(f"{server.stack.url}uploads/{project}/{upload_id}/",
                              headers={"Authorization": f"Token {server.token}"}, timeout=30)
    assert aborted.status_code == 204, aborted.text

    result = ok(server.transfer("upload", project, str(local)))
    assert f"upload {upload_id} is gone from the server" in result.stderr
    assert json.loads(result.stdout)["sha256"] == hashlib.sha256(data).hexdigest()
    assert not state_file.exists()


def test_an_interrupted_download_fetches_only_the_missing_ranges(server, tmp_path):
    source = tmp_path / "source.tif"
    data = random_file(source, 5 * PART + 777, seed=3)  # 6 ranges
    project = server.project("transfer_resume_down")
    ok(server.transfer("upload", project, str(source), "rasters/ortho.tif"))

    target = tmp_path / "ortho.tif"
    state_file = tmp_path / "ortho.tif.qfc-download.json"
    partial = tmp_path / "ortho.tif.part"
    fetched: list[int] = []

    def ctrl_c_after_two_ranges(index: int) -> None:
        fetched.append(index)
        if len(fetched) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download.download(server.api(), project, "rasters/ortho.tif", target, workers=2,
                          show_progress=False, on_range=ctrl_c_after_two_ranges)
    # The state is saved before the hook runs, so it holds exactly the two finished ranges.
    assert set(json.loads(state_file.read_text())["done"]) == set(fetched)
    assert partial.stat().st_size == len(data) and not target.exists()

    mark = server.journal_mark()
    resumed = ok(server.transfer("download", project, "rasters/ortho.tif", str(tmp_path)))
    assert ("resuming the download of rasters/ortho.tif: 2 of 6 ranges already here, 4 to fetch"
            in resumed.stderr)
    assert "4 of 6 ranges fetched now" in resumed.stdout
    missing = [index for index in range(6) if index not in fetched]
    expected = {f"bytes={i * PART}-{min((i + 1) * PART, len(data)) - 1}" for i in missing}
    got = ranges_got(server.s3_requests(mark))
    assert sorted(got) == sorted(expected)
    assert target.read_bytes() == data
    assert not state_file.exists() and not partial.exists()


def test_a_download_that_does_not_verify_keeps_nothing(server, tmp_path):
    source = tmp_path / "source.bin"
    data = random_file(source, 2 * PART + 5, seed=5)  # 3 ranges
    project = server.project("transfer_tamper")
    ok(server.transfer("upload", project, str(source), "data.bin"))

    target = tmp_path / "data.bin"
    target.write_bytes(b"the previous copy")
    with pytest.raises(KeyboardInterrupt):
        download.download(server.api(), project, "data.bin", target, workers=1, show_progress=False,
                          on_range=interrupt)
    [done] = json.loads((tmp_path / "data.bin.qfc-download.json").read_text())["done"]
    partial = tmp_path / "data.bin.part"
    with open(partial, "r+b") as file:  # damage the range already fetched: a rerun trusts it
        file.seek(done * PART + 100)
        file.write(b"\0" * 10)

    failed = server.transfer("download", project, "data.bin", str(target))
    assert failed.returncode == 1, failed.output
    assert "error: checksum_mismatch: " in failed.stderr
    assert target.read_bytes() == b"the previous copy"
    assert not partial.exists() and not (tmp_path / "data.bin.qfc-download.json").exists()

    ok(server.transfer("download", project, "data.bin", str(target)))
    assert target.read_bytes() == data


def test_download_of_an_older_version(server, tmp_path):
    project = server.project("transfer_versions")
    local = tmp_path / "notes.bin"
    first = random_file(local, PART + 10, seed=6)
    first_version = json.loads(ok(server.transfer("upload", project, str(local))).stdout)["version_id"]
    second = random_file(local, 3 * MIB, seed=7)
    ok(server.transfer("upload", project, str(local)))

    old = tmp_path / "old.bin"
    ok(server.transfer("download", "--version", first_version, project, "notes.bin", str(old)))
    assert old.read_bytes() == first
    latest = tmp_path / "latest.bin"
    ok(server.transfer("download", project, "notes.bin", str(latest)))
    assert latest.read_bytes() == second

    unknown = server.transfer("download", "--version", str(uuid.uuid4()), project, "notes.bin",
                              str(tmp_path / "x"))
    assert unknown.returncode == 1 and "error: object_not_found: " in unknown.stderr


def test_errors_exit_1_with_the_api_code(server, tmp_path):
    local = tmp_path / "small.bin"
    random_file(local, 1000, seed=8)
    nowhere = str(uuid.uuid4())

    for result in (server.transfer("upload", nowhere, str(local)),
                   server.transfer("download", nowhere, "small.bin", str(tmp_path / "copy"))):
        assert result.returncode == 1, result.output
        assert result.stderr.startswith("error: object_not_found: "), result.stderr
        assert "Traceback" not in result.output

    project = server.project("transfer_errors")
    for result in (server.transfer("upload", project, str(local), token="bogus-token"),
                   server.transfer("download", project, "small.bin", str(tmp_path / "copy"),
                                   token="bogus-token")):
        assert result.returncode == 1, result.output
        assert result.stderr.startswith("error: token_authentication_failed: "), result.stderr

    missing = server.transfer("download", project, "no/such file.bin", str(tmp_path / "copy"))
    assert missing.returncode == 1 and "error: object_not_found: " in missing.stderr
    assert sorted(os.listdir(tmp_path)) == ["small.bin"]  # no state files from failed starts
