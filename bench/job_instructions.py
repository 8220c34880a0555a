"""Instructions the QGIS job cores execute, this checkout beside a baseline checkout, counted by
valgrind's callgrind. Unlike wall and CPU time, the count hardly moves with the machine's load, so
a change of a few per cent can be told from noise on a shared two-core machine (callgrind runs
each core about 60 times slower: minutes, not seconds).

    .venv/bin/python -m bench.job_instructions --baseline DIR [--points N] [--deltas N]

DIR is a checkout of the commit to compare with (`git worktree add /tmp/base COMMIT`). Each core
runs in a fresh interpreter (Python and QGIS start included, as a job pays them) with this venv's
packages on the same generated data: package and process_projectfile on N points (default
10,000), apply_deltas of N `patch` and `mixed` deltas (default 1,000) on 100k points. Prints the
counts, the ratio to the baseline, and one JSON line. Needs valgrind (`apt install valgrind`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import json_line, table
from bench.jobs_core import _generate_points_project as generate_points_project
from tests import shared_data

ROOT = Path(__file__).resolve().parent.parent
COLLECTED = re.compile(r"Collected : (\d+)")

# Runs inside the measured interpreter, in either checkout (the working directory). The cores moved
# to job_containers/cores/ with the layers (issue 20), so an older baseline has them one level up.
# The module is chosen by its file in the checkout, not by trying imports: the venv's editable
# install of this checkout would otherwise answer for a module the baseline lacks.
CHILD = """
import importlib, json, sys
from pathlib import Path

def core(name):
    layered = Path("job_containers", "cores", f"{name}.py").exists()
    module = importlib.import_module(f"job_containers.cores.{name}" if layered else f"job_containers.{name}")
    if not Path(module.__file__).resolve().is_relative_to(Path.cwd().resolve()):
        raise SystemExit(f"{module.__name__} came from {module.__file__}, not from this checkout")
    return getattr(module, name)

kind, project, *rest = sys.argv[1:]
if kind == "apply_deltas":
    deltas = json.loads(Path(rest[0]).read_text())["deltas"]
    feedback = core(kind)(Path(project), "project.qgs", deltas, {}, False)
else:
    feedback = core(kind)(Path(project), "project.qgs", Path(rest[0]))
if feedback.get("error"):
    raise SystemExit(feedback["error"])
"""


def count(tree: Path, args: list[str]) -> int:
    """Instructions of one run of a core, with `tree` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-c", CHILD, *args],
        cwd=tree, env=env, capture_output=True, text=True,
    )
    found = COLLECTED.search(run.stderr)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"{args[0]} in {tree} failed:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--deltas", type=int, default=1_000)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt install valgrind)", file=sys.stderr)
        return 2
    trees = {"baseline": args.baseline.resolve(), "this": ROOT}
    tools = shared_data.tools()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        work = Path(tmp)

        def generate(name: str, points: int) -> Path:
            generate_points_project(work / name, points)
            return work / name

        small, large = generate("small", args.points), generate("large", 100_000)
        cases: list[tuple[str, list[str]]] = []
        for core in ("package", "process_projectfile"):
            cases.append((f"{core} {args.points} points", [core, str(small), str(work / "out")]))
        for kind in ("patch", "mixed"):
            deltafile = work / f"{kind}.json"
            subprocess.run(["/usr/bin/python3", tools / "make_deltafile.py", "make", large, deltafile,
                            "--kind", kind, "--count", str(args.deltas)], check=True, capture_output=True)
            cases.append((f"apply_deltas {args.deltas} {kind}",
                          ["apply_deltas", str(work / "edited"), str(deltafile)]))
        for name, case in cases:
            counts = {}
            for label, tree in trees.items():
                # every run starts from the same files: a fresh output folder, an unedited project
                shutil.rmtree(work / "out", ignore_errors=True)
                shutil.rmtree(work / "edited", ignore_errors=True)
                shutil.copytree(large, work / "edited")
                counts[label] = count(tree, case)
            results.append({"case": name, **counts, "ratio": round(counts["this"] / counts["baseline"], 4)})
    print(table(["case", "baseline", "this", "ratio"],
                [[r["case"], f"{r['baseline']:,}", f"{r['this']:,}", f"{r['ratio']:.3f}"] for r in results]))
    print(json_line("job_instructions", baseline=str(trees["baseline"]), results=results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
