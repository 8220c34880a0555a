"""The local stack as data grows: each figure beside its baseline, measured in the same run on the
real stack (`python -m devstack run` in a temporary data dir, no job worker).

    .venv/bin/python -m bench.local_stack            (all four, defaults; `./dev bench local_stack`)
    .venv/bin/python -m bench.local_stack lists [--sizes 10 1000 10000] [--repeat 30]
    .venv/bin/python -m bench.local_stack upload [--mib 20] [--repeat 15]
    .venv/bin/python -m bench.local_stack upload-latency [--sizes 10 10000] [--repeat 30]
    .venv/bin/python -m bench.local_stack restart [--gib 1] [--mib 20]

- lists: `GET files/<p>/` with `limit=50` and whole, p50/p99, for projects of 10, 1,000 and
  10,000 files of ten versions (written straight into the tables), beside a raw boto3 Query of
  one page (`Limit=50`) and a raw boto3 paged Query of the whole partition. Goals: a page at
  10,000 within 1.5x of a page at 10; the whole list within 1.3x of the raw paged Query.
- upload: a direct upload (multipart POST) of `--mib` MiB, median time beside a boto3
  `put_object` of the same bytes to the stand-in, and the API process's peak RSS growth during it.
  Goals: within 1.5x of put_object, growth at most 3x the file.
- upload-latency: a 1 KB direct upload into a project of 10 and of 10,000 files (of ten versions).
  Goal: within 1.5x.
- restart: `--gib` GiB of direct uploads, then stop and start: time until the API serves, and
  the data dir's size beside the bytes stored. Goals: 30 s, 1.2x.

Timings are medians of `--repeat` runs, interleaved with their baseline; each part prints a table
and a JSON line (`bench.common`) with the load average (compare within a run, repeat when busy).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import requests

from bench.common import json_line, load_text, percentile, table
from tests.e2e.stack import ADMIN_PASSWORD, LocalStack

MIB = 1024 * 1024


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def _p99_ms(values: list[float]) -> float:
    return round(percentile(values, 0.99) * 1000, 1)


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


@contextmanager
def running_stack(data_dir: Path | None = None, **env: str):
    temporary = data_dir is None
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="qfc-bench-"))
    stack = LocalStack(data_dir, extra_env={"QFC_WORKER": "0", **env})
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)


def point_at(stack: LocalStack) -> None:
    """This process's chalicelib and boto3 talk to the stack's AWS stand-in."""
    from chalicelib import config

    os.environ.update({"QFC_AWS_ENDPOINT_URL": f"http://127.0.0.1:{stack.aws_port}",
                       "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    config.reload()


class Api:
    def __init__(self, stack: LocalStack):
        self.url = stack.url
        self.session = requests.Session()
        reply = self.session.post(self.url + "auth/login/", data={"username": "admin",
                                                                  "password": ADMIN_PASSWORD})
        reply.raise_for_status()
        self.session.headers["Authorization"] = "Token " + reply.json()["token"]

    def create_project(self) -> str:
        reply = self.session.post(self.url + "projects/", data={"name": "p" + uuid.uuid4().hex[:8]})
        reply.raise_for_status()
        return reply.json()["id"]

    def get(self, path: str) -> requests.Response:
        reply = self.session.get(self.url + path)
        reply.raise_for_status()
        return reply

    def upload(self, project_id: str, name: str, content: bytes) -> None:
        reply = self.session.post(f"{self.url}files/{project_id}/{name}/", files={"file": ("f", content)})
        if reply.status_code != 201:
            raise RuntimeError(f"upload: {reply.status_code} {reply.text[:200]}")


def _boto(service: str):
    import boto3

    from chalicelib.config import settings

    return boto3.client(service, endpoint_url=settings.aws_endpoint_url, region_name=settings.region)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _stand_in_rss_mib(stack: LocalStack) -> float:
    """Resident memory of the AWS stand-in (the stack's child running devstack.aws_standin)."""
    for child in _children(stack.process.pid):
        if b"aws_standin" in Path(f"/proc/{child}/cmdline").read_bytes():
            return _rss_kib(child) / 1024
    return float("nan")


# --- lists ----------------------------------------------------------------------------------


def lists(sizes: list[int], repeat: int) -> None:
    from chalicelib.models import ProjectFile
    from tests.large_project import add_files

    with running_stack() as stack:
        point_at(stack)
        api = Api(stack)
        dynamodb = _boto("dynamodb")
        table_name = ProjectFile.Meta.table_name
        projects = {}
        for size in sizes:
            projects[size] = api.create_project()
            add_files(projects[size], size, versions=10)
        print(f"the AWS stand-in holds {sum(sizes):,} files of 10 versions in "
              f"{_stand_in_rss_mib(stack):.0f} MiB")

        def raw_page(pid):
            dynamodb.query(TableName=table_name, KeyConditionExpression="project_id = :p",
                           ExpressionAttributeValues={":p": {"S": pid}}, Limit=50)

        def raw_all(pid):
            paginator = dynamodb.get_paginator("query")
            for _ in paginator.paginate(TableName=table_name, KeyConditionExpression="project_id = :p",
                                        ExpressionAttributeValues={":p": {"S": pid}}):
                pass

        results = {}
        for size in sizes:
            pid = projects[size]
            rounds = repeat if size < 10_000 else max(5, repeat // 3)
            timings: dict[str, list[float]] = {"page": [], "raw_page": [], "page10": [], "whole": [],
                                               "raw_whole": []}
            for _ in range(repeat):
                timings["page"].append(_timed(lambda p=pid: api.get(f"files/{p}/?limit=50")))
                timings["raw_page"].append(_timed(lambda p=pid: raw_page(p)))
                timings["page10"].append(_timed(lambda p=pid: api.get(f"files/{p}/?limit=10")))
            for _ in range(rounds):
                timings["whole"].append(_timed(lambda p=pid: api.get(f"files/{p}/")))
                timings["raw_whole"].append(_timed(lambda p=pid: raw_all(p)))
            results[size] = {kind: {"p50_ms": _median_ms(values), "p99_ms": _p99_ms(values)}
                             for kind, values in timings.items()}
        print(f"GET files/<p>/ on projects of N files of 10 versions, ms ({load_text()})")
        print(table(("files", "limit=50 p50", "p99", "raw page p50", "limit=10 p50", "whole p50", "p99",
                     "raw whole p50", "whole/raw"),
                    [(f"{size:,}", r["page"]["p50_ms"], r["page"]["p99_ms"], r["raw_page"]["p50_ms"],
                      r["page10"]["p50_ms"], r["whole"]["p50_ms"], r["whole"]["p99_ms"],
                      r["raw_whole"]["p50_ms"], f"{r['whole']['p50_ms'] / r['raw_whole']['p50_ms']:.2f}x")
                     for size, r in results.items()]))
        goals = {}
        if len(sizes) > 1:
            small, large = min(sizes), max(sizes)
            goals = {"page_large_over_small": round(results[large]["page"]["p50_ms"]
                                                    / results[small]["page"]["p50_ms"], 2),
                     "page_goal": 1.5,
                     "whole_over_raw_paged_query": round(results[large]["whole"]["p50_ms"]
                                                         / results[large]["raw_whole"]["p50_ms"], 2),
                     "whole_goal": 1.3}
            print(f"limit=50 at {large:,} / at {small:,}: {goals['page_large_over_small']:.2f}x (goal 1.5x); "
                  f"whole list at {large:,} / raw paged Query: {goals['whole_over_raw_paged_query']:.2f}x "
                  f"(goal 1.3x)")
        print(json_line("local_stack.lists", versions=10, results=results, **goals))


# --- upload ---------------------------------------------------------------------------------


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def _peak_growth_mib(pid: int, call) -> tuple[float, float, float]:
    """Run `call`; (seconds, peak RSS growth of process `pid` in MiB, growth kept after it)."""
    before = _rss_kib(pid)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak starts again from now
    seconds = _timed(call)
    peak, after = _rss_kib(pid, "VmHWM"), _rss_kib(pid)
    return seconds, (peak - before) / 1024, (after - before) / 1024


def upload(mib: int, repeat: int) -> None:
    with running_stack() as stack:
        point_at(stack)
        from chalicelib.config import settings

        api = Api(stack)
        s3 = _boto("s3")
        pid = api.create_project()
        content = os.urandom(mib * MIB)
        api.upload(pid, "warmup.bin", b"x")
        ours, raw, growth, kept = [], [], [], []
        for number in range(repeat):
            seconds, peak, after = _peak_growth_mib(
                stack.process.pid, lambda n=number: api.upload(pid, f"big{n}.bin", content))
            ours.append(seconds)
            growth.append(peak)
            kept.append(after)
            raw.append(_timed(lambda n=number: s3.put_object(Bucket=settings.bucket, Key=f"raw/{n}",
                                                                 Body=content)))
        figures = {"post_ms": _median_ms(ours), "put_object_ms": _median_ms(raw),
                   "time_ratio": round(statistics.median(ours) / statistics.median(raw), 2), "time_goal": 1.5,
                   "peak_growth_mib": round(max(growth), 1), "growth_ratio": round(max(growth) / mib, 2),
                   "growth_goal": 3.0, "kept_mib": round(statistics.median(kept), 1)}
        print(f"direct upload of {mib} MiB, {repeat} runs ({load_text()})")
        print(table(("POST files/ p50 ms", "put_object p50 ms", "ratio (goal 1.5x)",
                     "API peak RSS growth MiB (max)", "x the file (goal 3x)", "kept after MiB"),
                    [(figures["post_ms"], figures["put_object_ms"], f"{figures['time_ratio']:.2f}x",
                      figures["peak_growth_mib"], f"{figures['growth_ratio']:.2f}x", figures["kept_mib"])]))
        print(json_line("local_stack.upload", mib=mib, repeat=repeat, **figures))


# --- upload latency -------------------------------------------------------------------------


def upload_latency(sizes: list[int], repeat: int) -> None:
    from tests.large_project import add_files

    with running_stack() as stack:
        point_at(stack)
        api = Api(stack)
        projects = {}
        for size in sizes:
            projects[size] = api.create_project()
            add_files(projects[size], size, versions=10)
        timings: dict[int, list[float]] = {size: [] for size in sizes}
        for number in range(repeat):
            for size in sizes:
                timings[size].append(_timed(lambda s=size, n=number: api.upload(
                    projects[s], f"new/{n}.csv", os.urandom(1000))))
        results = {size: {"p50_ms": _median_ms(values), "p99_ms": _p99_ms(values)}
                   for size, values in timings.items()}
        print(f"1 KB direct upload into a project of N files of 10 versions, {repeat} runs each, "
              f"interleaved ({load_text()})")
        print(table(("files", "p50 ms", "p99 ms"),
                    [(f"{size:,}", r["p50_ms"], r["p99_ms"]) for size, r in results.items()]))
        ratio = None
        if len(sizes) > 1:
            ratio = round(results[max(sizes)]["p50_ms"] / results[min(sizes)]["p50_ms"], 2)
            print(f"p50 at {max(sizes):,} / at {min(sizes):,}: {ratio:.2f}x (goal 1.5x)")
        print(json_line("local_stack.upload_latency", results=results, ratio=ratio, goal=1.5))


# --- restart --------------------------------------------------------------------------------


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def restart(gib: float, mib: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="qfc-bench-restart-"))
    try:
        count = max(1, round(gib * 1024 / mib))
        with running_stack(data_dir) as stack:
            api = Api(stack)
            pid = api.create_project()
            start = time.perf_counter()
            for number in range(count):
                api.upload(pid, f"f{number}.bin", os.urandom(mib * MIB))
            uploaded = count * mib * MIB
            print(f"uploaded {count} x {mib} MiB = {uploaded / 1024**3:.2f} GiB in "
                  f"{time.perf_counter() - start:.0f} s ({load_text()})")
        stored = _du(data_dir)
        print(f"data dir after the uploads: {stored / 1024**3:.2f} GiB")
        rows = []
        for restart_number in (1, 2):
            stack = LocalStack(data_dir, extra_env={"QFC_WORKER": "0"})
            start = time.perf_counter()
            stack.start(timeout=600)
            try:
                api = Api(stack)
                listed = api.get(f"files/{pid}/").json()
                ready = time.perf_counter() - start
            finally:
                stack.stop()
            after = _du(data_dir)
            rows.append((restart_number, round(ready, 1), len(listed), round(after / 1024**3, 2),
                         f"{after / uploaded:.2f}x"))
            for line in stack.output:
                if line.startswith("Local state:"):
                    print(f"restart {restart_number}, the stack said: " + line.rstrip())
        print(f"restart after {uploaded / 1024**3:.2f} GiB of uploads ({load_text()})")
        print(table(("restart", "until serving s (goal 30)", "files listed", "data dir GiB",
                     "x bytes stored (goal 1.2x)"), rows))
        print(json_line("local_stack.restart", uploaded_bytes=uploaded,
                        restarts=[{"serving_s": row[1], "data_dir_gib": row[3],
                                   "over_stored": round(float(row[4][:-1]), 2)} for row in rows],
                        serving_goal_s=30, size_goal=1.2))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_stack")
    commands = parser.add_subparsers(dest="command")
    for name, sizes, repeat in (("lists", [10, 1000, 10_000], 30), ("upload-latency", [10, 10_000], 30)):
        command = commands.add_parser(name)
        command.add_argument("--sizes", type=int, nargs="+", default=sizes)
        command.add_argument("--repeat", type=int, default=repeat)
    command = commands.add_parser("upload")
    command.add_argument("--mib", type=int, default=20)
    command.add_argument("--repeat", type=int, default=15)
    command = commands.add_parser("restart")
    command.add_argument("--gib", type=float, default=1.0)
    command.add_argument("--mib", type=int, default=20)
    args = parser.parse_args(argv)
    if args.command is None:
        lists([10, 1000, 10_000], 30)
        upload(20, 5)
        upload_latency([10, 10_000], 30)
        restart(1.0, 20)
    elif args.command == "lists":
        lists(args.sizes, args.repeat)
    elif args.command == "upload-latency":
        upload_latency(args.sizes, args.repeat)
    elif args.command == "upload":
        upload(args.mib, args.repeat)
    else:
        restart(args.gib, args.mib)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
