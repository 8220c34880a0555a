"""Large-file throughput through the API's presigned flows, beside boto3 moving the same bytes to
the same S3 in the same run.

    .venv/bin/python -m bench.transfer [--mib 200] [--repeat 3] [--workers 4]

On the real local stack (moto's server as S3), a file of `--mib` MiB of random bytes:
- upload: `qfc-transfer`'s upload (POST uploads/ → parallel PUTs of 8 MiB parts to presigned URLs
  → POST complete/ with the file's SHA-256, which the server records at once and checks against
  the assembled object in the background), beside boto3's `upload_file` of the same file with the
  same part size and concurrency. The background check is timed apart (from the answer until the
  API process is idle again), and nothing else runs until it is over;
- download: `qfc-transfer`'s download (the 302 of GET files/<id>/<name>/ → parallel ranged GETs
  of the presigned URL, checksums verified), beside boto3's `download_file`.
Each pair runs back to back, `--repeat` times, boto3 first in even runs and ours first in odd
ones; a run's ratio is our MiB/s over boto3's in that run (the pair shares the machine's load of
the moment), and the median ratio is reported beside the median throughputs. The goal is a ratio
of at least 0.9.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import requests
from boto3.s3.transfer import TransferConfig

from bench.common import json_line, table
from qfc_transfer.api import Api
from qfc_transfer.download import download
from qfc_transfer.upload import upload
from tests.e2e.stack import ADMIN_PASSWORD, LocalStack

MIB = 1024 * 1024
PART_SIZE = 8 * MIB  # the API's part size (and the clients' ETag part size)
BUCKET = "qfc-files"  # the local stack's (QFC_BUCKET's default)
GOAL = 0.9


def _timed(action: Callable[..., object], *args: object, **kwargs: object) -> float:
    started = time.perf_counter()
    action(*args, **kwargs)
    return time.perf_counter() - started


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _until_idle(pid: int, quiet: float = 0.3, step: float = 0.05) -> float:
    """Seconds until process `pid` has used no CPU for `quiet` seconds (its background work is
    over), not counting those quiet seconds."""
    started = last_busy = time.perf_counter()
    used = _cpu_seconds(pid)
    while time.perf_counter() - last_busy < quiet:
        time.sleep(step)
        now = _cpu_seconds(pid)
        if now != used:
            used, last_busy = now, time.perf_counter()
    return last_busy - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transfer", description=__doc__)
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as folder:
        work = Path(folder)
        source = work / "big.bin"
        with source.open("wb") as out:
            for _ in range(args.mib):
                out.write(os.urandom(MIB))
        stack = LocalStack(work / "stack", extra_env={"QFC_WORKER": "0"})
        stack.start()
        try:
            seconds = _measure(stack, source, work, args)
        finally:
            stack.stop()
    rows, results = [], {}
    check = statistics.median(seconds["upload", "background check"])
    for direction in ("upload", "download"):
        ours, raw = (statistics.median(seconds[direction, kind]) for kind in ("api", "boto3"))
        ratio = statistics.median(boto3 / api for api, boto3 in zip(
            seconds[direction, "api"], seconds[direction, "boto3"], strict=True))
        results[direction] = {"api_mib_s": round(args.mib / ours, 1), "boto3_mib_s": round(args.mib / raw, 1),
                              "ratio": round(ratio, 2), "meets_goal": ratio >= GOAL}
        rows.append((direction, f"{args.mib / ours:.1f}", f"{args.mib / raw:.1f}", f"{ratio:.2f}",
                     "yes" if ratio >= GOAL else "NO"))
    print(table((f"{args.mib} MiB, {args.workers} workers", "API MiB/s", "boto3 MiB/s", "ratio",
                 f">= {GOAL}"), rows))
    print(f"after the upload's answer, the server's background check of its SHA-256: {check:.2f} s (median)")
    print(json_line("transfer", mib=args.mib, repeat=args.repeat, workers=args.workers, results=results,
                    upload_background_check_s=round(check, 2)))
    return 0


def _measure(stack: LocalStack, source: Path, work: Path, args) -> dict[tuple[str, str], list[float]]:
    login = requests.post(stack.url + "auth/login/", json={"username": "admin", "password": ADMIN_PASSWORD},
                          timeout=60)
    login.raise_for_status()
    api = Api(stack.url, login.json()["token"])
    project = api.json("POST", "projects/", json={"name": "transfer"})["id"]
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{stack.aws_port}", region_name="us-east-1",
                      aws_access_key_id="local", aws_secret_access_key="local")
    config = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE,
                            max_concurrency=args.workers, use_threads=True)
    seconds: dict[tuple[str, str], list[float]] = {
        (direction, kind): [] for direction in ("upload", "download") for kind in ("api", "boto3")}
    checks = seconds["upload", "background check"] = []
    for run in range(args.repeat):
        name = f"big-{run}.bin"
        raw_copy, api_copy = work / f"raw-{run}.bin", work / f"api-{run}.bin"

        def boto3_upload(name=name):
            seconds["upload", "boto3"].append(
                _timed(s3.upload_file, str(source), BUCKET, f"bench/{name}", Config=config))

        def api_upload(name=name):
            seconds["upload", "api"].append(
                _timed(upload, api, project, source, name, workers=args.workers, show_progress=False))
            checks.append(_until_idle(stack.process.pid))

        def boto3_download(name=name, raw_copy=raw_copy):
            seconds["download", "boto3"].append(
                _timed(s3.download_file, BUCKET, f"bench/{name}", str(raw_copy), Config=config))

        def api_download(name=name, api_copy=api_copy):
            seconds["download", "api"].append(
                _timed(download, api, project, name, api_copy, workers=args.workers, show_progress=False))

        # Who goes first alternates: the one that follows meets the disk still writing back the
        # other's 200 MiB.
        pairs = ((boto3_upload, api_upload), (boto3_download, api_download))
        for first, second in pairs:
            for action in ((first, second) if run % 2 == 0 else (second, first)):
                action()
        assert api_copy.stat().st_size == raw_copy.stat().st_size == source.stat().st_size
        for path in (raw_copy, api_copy):
            path.unlink()
        print(f"run {run + 1}: " + ", ".join(f"{direction} {kind} {values[-1]:.2f} s"
                                             for (direction, kind), values in seconds.items()),
              file=sys.stderr, flush=True)
    return seconds


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
