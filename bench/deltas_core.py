"""Deltas per second of the apply_deltas core, on the issue's data: 1,000 deltas on 100k points.

    .venv/bin/python -m bench.deltas_core [--points 100000] [--count 1000] [--repeat 3]

Generates the project and the `patch` and `mixed` deltafiles with the shared tools, then applies
each deltafile `--repeat` times, every time to a fresh copy of the project and in a fresh process,
so the figures include Python and QGIS start and the project load, as a job pays them. Each run is
checked by the shared, independent OGR checker (`make_deltafile.py verify`). Prints medians:
deltas/s (deltas / wall time of the whole process), wall, the time spent inside `apply_deltas()`
(QGIS start, project load, apply, commit), peak RSS; then one JSON line. The reference worker does
70 deltas/s here; the bar is 350/s. The machine may be shared: the load average is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests import shared_data

KINDS = ("patch", "mixed")


def child(project_dir: Path, deltafile: Path) -> None:
    """Runs in the measured process: applies the deltafile, prints the core's time and statuses."""
    from job_containers.cores.apply_deltas import apply_deltas

    deltas = json.loads(deltafile.read_text())["deltas"]
    start = time.perf_counter()
    feedback = apply_deltas(project_dir, "project.qgs", deltas, {}, False)
    core_s = time.perf_counter() - start
    items = feedback.get("outputs", {}).get("apply_deltas", {}).get("delta_feedback", [])
    print(json.dumps({
        "core_s": core_s,
        "error": feedback.get("error"),
        "applied": sum(item["status"] == "status_applied" for item in items),
    }))


def measure(base: Path, deltafile: Path, work: Path) -> dict:
    project = work / "project"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(base, project)
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.deltas_core", "--child", project, deltafile],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall_s = time.perf_counter() - start
    result = json.loads(process.stdout.read().decode().strip().splitlines()[-1])
    if os.waitstatus_to_exitcode(status) != 0 or result["error"]:
        raise SystemExit(f"run failed: exit {status}, {result}")
    verify = subprocess.run(
        [sys.executable, shared_data.tools() / "make_deltafile.py", "verify", project, deltafile],
        capture_output=True, text=True,
    )
    return {
        "wall_s": wall_s,
        "core_s": result["core_s"],
        "peak_rss_mb": usage.ru_maxrss / 1024,
        # user and system CPU: what a busy machine's other work changes least
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "applied": result["applied"],
        "verified": verify.returncode == 0,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    tools = shared_data.tools()
    load_before = os.getloadavg()[0]
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-deltas-") as tmp:
        work = Path(tmp)
        base = work / "base"
        subprocess.run([sys.executable, tools / "make_points_project.py", base, str(args.points)],
                       check=True, capture_output=True)
        for kind in KINDS:
            deltafile = work / f"{kind}.json"
            subprocess.run([sys.executable, tools / "make_deltafile.py", "make", base, deltafile,
                            "--kind", kind, "--count", str(args.count)], check=True, capture_output=True)
            runs = [measure(base, deltafile, work) for _ in range(args.repeat)]
            if not all(run["verified"] and run["applied"] == args.count for run in runs):
                raise SystemExit(f"{kind}: not every delta applied and verified: {runs}")
            wall = statistics.median(run["wall_s"] for run in runs)
            results[kind] = {
                "deltas_per_s": round(args.count / wall, 1),
                "wall_s": round(wall, 3),
                "core_s": round(statistics.median(run["core_s"] for run in runs), 3),
                "cpu_s": round(statistics.median(run["cpu_s"] for run in runs), 3),
                "peak_rss_mb": round(statistics.median(run["peak_rss_mb"] for run in runs), 1),
                "runs": len(runs),
                "verified": True,
            }
    load = {"before": load_before, "after": os.getloadavg()[0], "cpus": os.cpu_count()}

    print(f"apply_deltas core: {args.count} deltas on {args.points} points, median of {args.repeat}, "
          f"fresh process each (load avg {load['before']:.2f} -> {load['after']:.2f}, {load['cpus']} cpus)")
    print(f"{'kind':8}{'deltas/s':>10}{'wall s':>9}{'core s':>9}{'CPU s':>8}{'peak RSS MB':>13}")
    for kind, result in results.items():
        print(f"{kind:8}{result['deltas_per_s']:>10}{result['wall_s']:>9}{result['core_s']:>9}"
              f"{result['cpu_s']:>8}{result['peak_rss_mb']:>13}")
    print(json.dumps({"bench": "deltas_core", "points": args.points, "count": args.count, "results": results,
                      "load_avg": load}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
