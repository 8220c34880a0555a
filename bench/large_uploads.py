"""Uploads too large for API Gateway and Lambda, through the large-request path, each beside its
baseline in the same run, on the real local stack (`python -m devstack run`, no job worker).

    .venv/bin/python -m bench.large_uploads              (both parts; `./dev bench large_uploads`)
    .venv/bin/python -m bench.large_uploads gib [--mib 1024] [--repeat 2]
    .venv/bin/python -m bench.large_uploads photo [--repeat 10]

- gib: a QField-style multipart POST (a JSON `text` part, then `file`, with its Content-Length)
  of `--mib` MiB to `files/<project>/<path>/` on the stack's URL, which the edge sends to the
  large-request service, beside boto3's `upload_file` (its default configuration) of the same file
  to the same S3 stand-in; the time ratio (ours over boto3's, median of the runs, each pair back to
  back, who goes first alternating) and the service's peak RSS growth during the POST (after a
  first upload of 20 MiB, as a service that has run: its S3 client made, its threads started).
  Goals: at most 1.3x, at most 64 MiB.
- photo: a 12 MB photo posted the same way (the large path) beside a 4 MB one (under the
  4.4 MB that go through API Gateway and the function), median time of each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import boto3

from bench.common import json_line, load_text, table
from bench.local_stack import Api, _children, _peak_growth_mib, running_stack
from tests.e2e.stack import LocalStack

MIB = 1024 * 1024
TIME_GOAL = 1.3
GROWTH_GOAL_MIB = 64
BOUNDARY = "qfieldboundary"
READ_SIZE = MIB


class QFieldBody:
    """What QField sends for a file, streamed from disk with its length known (Content-Length)."""

    def __init__(self, path: Path, project_id: str) -> None:
        self.path = path
        self.head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n"
                     + json.dumps({"project": project_id})
                     + f"\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
                     f"filename=\"/storage/emulated/0/DCIM/{path.name}\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n").encode()
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    def __len__(self) -> int:
        return len(self.head) + self.path.stat().st_size + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        with self.path.open("rb") as source:
            while chunk := source.read(READ_SIZE):
                yield chunk
        yield self.tail


def post(api: Api, project_id: str, name: str, path: Path) -> None:
    reply = api.session.post(f"{api.url}files/{project_id}/{name}/", data=QFieldBody(path, project_id),
                             headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
                             timeout=3600)
    if reply.status_code != 201:
        raise RuntimeError(f"upload: {reply.status_code} {reply.text[:300]}")


def _service_pid(stack: LocalStack) -> int:
    for child in _children(stack.process.pid):
        if b"large_requests" in Path(f"/proc/{child}/cmdline").read_bytes():
            return child
    raise RuntimeError("the large-request service is not running")


def _s3(stack: LocalStack):
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{stack.aws_port}", region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def _random_file(path: Path, size: int) -> Path:
    with path.open("wb") as out:
        for start in range(0, size, MIB):
            out.write(os.urandom(min(MIB, size - start)))
    return path


def gib(mib: int, repeat: int) -> None:
    from chalicelib.config import settings

    with tempfile.TemporaryDirectory(prefix="bench-large-") as folder, running_stack() as stack:
        source = _random_file(Path(folder) / "big.gpkg", mib * MIB)
        api, s3, service = Api(stack), _s3(stack), _service_pid(stack)
        project = api.create_project()
        # A first large upload, as a running service has had: its S3 client, its threads.
        post(api, project, "warmup.gpkg", _random_file(Path(folder) / "warmup.gpkg", 20 * MIB))
        ours, raw, growth = [], [], []
        for run in range(repeat):
            def through_the_service(run=run):
                seconds, peak, _ = _peak_growth_mib(
                    service, lambda: post(api, project, f"big{run}.gpkg", source))
                ours.append(seconds)
                growth.append(peak)

            def boto3_upload(run=run):
                started = time.perf_counter()
                s3.upload_file(str(source), settings.bucket, f"bench/big{run}.gpkg")
                raw.append(time.perf_counter() - started)

            pair = (through_the_service, boto3_upload)
            for action in pair if run % 2 else reversed(pair):
                action()
            print(f"run {run + 1}: POST {ours[-1]:.1f} s, upload_file {raw[-1]:.1f} s, "
                  f"service peak RSS growth {growth[-1]:.1f} MiB", file=sys.stderr, flush=True)
    ratio = statistics.median(o / r for o, r in zip(ours, raw, strict=True))
    figures = {"post_s": round(statistics.median(ours), 2), "upload_file_s": round(statistics.median(raw), 2),
               "time_ratio": round(ratio, 2), "time_goal": TIME_GOAL,
               "service_peak_growth_mib": round(max(growth), 1), "growth_goal_mib": GROWTH_GOAL_MIB}
    print(f"{mib} MiB QField-style POST through the large path, {repeat} runs ({load_text()})")
    print(table(("POST s (median)", "boto3 upload_file s", f"ratio (goal {TIME_GOAL}x)",
                 f"service peak RSS growth MiB (max; goal {GROWTH_GOAL_MIB})"),
                [(figures["post_s"], figures["upload_file_s"], f"{ratio:.2f}x",
                  figures["service_peak_growth_mib"])]))
    print(json_line("large_uploads.gib", mib=mib, repeat=repeat, **figures))


def photo(repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-photo-") as folder, running_stack() as stack:
        large = _random_file(Path(folder) / "large.jpg", 12 * 1000 * 1000)
        small = _random_file(Path(folder) / "small.jpg", 4 * 1000 * 1000)
        api = Api(stack)
        project = api.create_project()
        post(api, project, "warmup.jpg", small)
        times: dict[str, list[float]] = {"large": [], "small": []}
        for run in range(repeat):
            pair = (("large", large), ("small", small))
            for kind, path in pair if run % 2 else reversed(pair):
                started = time.perf_counter()
                post(api, project, f"DCIM/{kind}{run}.jpg", path)
                times[kind].append(time.perf_counter() - started)
    figures = {"photo_12mb_large_path_ms": round(statistics.median(times["large"]) * 1000, 1),
               "photo_4mb_lambda_path_ms": round(statistics.median(times["small"]) * 1000, 1)}
    figures["ratio"] = round(figures["photo_12mb_large_path_ms"] / figures["photo_4mb_lambda_path_ms"], 2)
    print(f"QField-style photo POSTs, {repeat} runs each ({load_text()})")
    print(table(("12 MB, large path, ms (median)", "4 MB, API Gateway + function, ms (median)", "ratio"),
                [(figures["photo_12mb_large_path_ms"], figures["photo_4mb_lambda_path_ms"],
                  f"{figures['ratio']:.2f}x")]))
    print(json_line("large_uploads.photo", repeat=repeat, **figures))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.large_uploads", description=__doc__)
    parser.add_argument("part", nargs="?", choices=("gib", "photo"))
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args(argv)
    if args.part in (None, "gib"):
        gib(args.mib, args.repeat or 2)
    if args.part in (None, "photo"):
        photo(args.repeat or 10)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
