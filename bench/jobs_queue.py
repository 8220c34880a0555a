"""Jobs through the whole system: the local stack (`python -m devstack run`, its AWS stand-in and
its job worker) in a temporary folder, driven over HTTP as a client drives it.

    .venv/bin/python -m bench.jobs_queue [--points 10000 100000] [--deltas 1000] [--repeat 3]

Measures, medians of `--repeat` runs:
- latency: `POST jobs/` → `started` and → `finished` for a trivial project (a memory layer);
- package: `POST jobs/` → `finished` for one-layer GeoPackage projects of N points (shared tool),
  and the QGIS process's peak memory as the worker reports it in the job's log;
- deltas: `POST deltas/` of 1,000 `patch` and `mixed` deltas (shared tool) on the largest project
  → the delta_apply job `finished`, as deltas per second; each result checked by the shared
  independent checker.
Times are the server's own `started_at`/`finished_at` against the client's clock at the POST
(one machine, one clock); the client polls only to learn a job is over. Prints a table and one
JSON line. The goals: `started` within 2 s, a 100k-point package within
3.7 s and 300 MB, deltas at 350/s or more.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

from tests import shared_data
from tests.e2e.stack import LocalStack

PASSWORD = "bench-password-1"
PEAK = re.compile(r"peak memory (\d+) MB")
POLL_SECONDS = 0.25


class Client:
    def __init__(self, stack: LocalStack):
        self.base = stack.url
        token = requests.post(self.base + "auth/login/", data={"username": "bench", "password": PASSWORD},
                              timeout=30).json()["token"]
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        response = self.session.request(method, self.base + path, timeout=300, **kwargs)
        response.raise_for_status()
        return response

    def project(self, folder: Path) -> str:
        pid = self.call("POST", "projects/", json={"name": f"bench-{time.time_ns()}"}).json()["id"]
        files = sorted(folder.iterdir(), key=lambda path: path.suffix == ".qgs")
        for path in files:
            with path.open("rb") as content:
                self.call("POST", f"files/{pid}/{path.name}/", files={"file": (path.name, content)})
        self.wait_idle(pid)
        return pid

    def wait_idle(self, pid: str) -> None:
        while self.call("GET", f"projects/{pid}/").json()["status"] == "busy":
            time.sleep(0.05)

    def package_job(self, pid: str) -> tuple[float, float, dict]:
        """A new package job: seconds from its POST to `started` and to `finished`, and the job."""
        since = time.time()
        job = self.call("POST", "jobs/", json={"project_id": pid, "type": "package", "force": 1}).json()
        started, finished, result = self.timed_job(job["id"], since)
        assert result["status"] == "finished", result
        return started, finished, result

    def timed_job(self, job_id: str, since: float) -> tuple[float, float, dict]:
        """Seconds from `since` (this machine's clock at the POST) to the job's `started_at` and
        `finished_at`, as the server recorded them on the same clock. The client polls only to
        learn that the job is over, and seldom: a poll every few milliseconds would take CPU
        from the worker it measures."""
        after = functools.partial(_seconds_after, since=since)
        while True:
            job = self.call("GET", f"jobs/{job_id}/").json()
            if job["status"] in ("finished", "failed"):
                return after(job["started_at"]), after(job["finished_at"]), job
            time.sleep(POLL_SECONDS)


def _seconds_after(timestamp: str | None, since: float) -> float:
    if timestamp is None:  # a job that failed before it started
        return float("nan")
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() - since


def _points(folder: Path, count: int) -> Path:
    subprocess.run(["/usr/bin/python3", str(shared_data.tools() / "make_points_project.py"), str(folder),
                    str(count)], check=True, capture_output=True)
    return folder


def latency(client: Client, workdir: Path, repeat: int) -> dict:
    folder = workdir / "trivial"
    folder.mkdir()
    shutil.copyfile(shared_data.testdata() / "app" / "self_contained.qgs", folder / "project.qgs")
    pid = client.project(folder)
    runs = [client.package_job(pid)[:2] for _ in range(repeat)]
    return {"post_to_started_s": round(statistics.median(s for s, _ in runs), 3),
            "post_to_finished_s": round(statistics.median(f for _, f in runs), 3)}


def package(client: Client, workdir: Path, points: int, repeat: int) -> tuple[dict, str, Path]:
    folder = _points(workdir / f"points_{points}", points)
    pid = client.project(folder)
    runs = []
    for _ in range(repeat):
        _, finished, result = client.package_job(pid)
        peak = PEAK.search(result["output"] or "")
        runs.append((finished, int(peak.group(1)) if peak else None))
    figures = {"points": points, "post_to_finished_s": round(statistics.median(f for f, _ in runs), 2),
               "qgis_peak_rss_mb": statistics.median(p for _, p in runs if p is not None)}
    return figures, pid, folder


def deltas(client: Client, workdir: Path, folder: Path, kind: str, count: int, repeat: int) -> dict:
    runs = []
    for run in range(repeat):
        pid = client.project(folder)  # a fresh copy of the data for every run
        deltafile = workdir / f"{kind}_{run}.json"
        subprocess.run(["/usr/bin/python3", str(shared_data.tools() / "make_deltafile.py"), "make",
                        str(folder), str(deltafile), "--kind", kind, "--count", str(count)],
                       check=True, capture_output=True)
        content = json.loads(deltafile.read_text())
        content["project"] = pid
        body = json.dumps(content).encode()
        since = time.time()
        client.call("POST", f"deltas/{pid}/", files={"file": ("deltafile.json", body)})
        (job,) = client.call("GET", f"jobs/?project_id={pid}&type=delta_apply").json()
        _, finished, result = client.timed_job(job["id"], since)
        assert result["status"] == "finished", result
        runs.append(finished)
        edited = workdir / f"edited_{kind}_{run}"
        edited.mkdir()
        (edited / "meta.json").write_text((folder / "meta.json").read_text())
        url = client.call("GET", f"files/{pid}/points.gpkg/", allow_redirects=False).headers["Location"]
        (edited / "points.gpkg").write_bytes(requests.get(url, timeout=300).content)
        verified = subprocess.run(["/usr/bin/python3", str(shared_data.tools() / "make_deltafile.py"),
                                   "verify", str(edited), str(deltafile)], capture_output=True, text=True)
        assert json.loads(verified.stdout)["ok"], verified.stdout
    wall = statistics.median(runs)
    return {"kind": kind, "deltas": count, "post_to_finished_s": round(wall, 2),
            "deltas_per_s": round(count / wall)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.jobs_queue", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--deltas", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as workdir:
        work = Path(workdir)
        stack = LocalStack(work / "stack", extra_env={"QFC_PASSWORD_HASH_CHEAP": "1"})
        stack.start()
        try:
            assert stack.createuser("bench", PASSWORD).returncode == 0
            client = Client(stack)
            result = {"latency": latency(client, work, args.repeat), "package": [], "deltas": []}
            folder = None
            for points in args.points:
                figures, _, folder = package(client, work, points, args.repeat)
                result["package"].append(figures)
            for kind in ("patch", "mixed"):
                result["deltas"].append(deltas(client, work, folder, kind, args.deltas, args.repeat))
        finally:
            stack.stop()
    print(f"Through the local stack (API, queue, worker), median of {args.repeat}; "
          f"load average before: {load[0]:.2f}")
    print(f"  POST jobs/ → started   {result['latency']['post_to_started_s']:>7.3f} s   (goal ≤ 2 s)")
    print(f"  POST jobs/ → finished  {result['latency']['post_to_finished_s']:>7.3f} s   (trivial project)")
    for figures in result["package"]:
        print(f"  package {figures['points']:>7} points   {figures['post_to_finished_s']:>6.2f} s   "
              f"QGIS peak {figures['qgis_peak_rss_mb']} MB")
    for figures in result["deltas"]:
        label = f"{figures['deltas']} {figures['kind']} deltas"
        seconds, rate = figures["post_to_finished_s"], figures["deltas_per_s"]
        print(f"  {label:<22} {seconds:>6.2f} s   {rate:>5} deltas/s")
    print(json.dumps({"benchmark": "jobs_queue", "load": round(load[0], 2), **result}))


if __name__ == "__main__":
    main()
