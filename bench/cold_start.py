"""The Lambda cold start we control: importing `app.py` in a fresh interpreter.

    .venv/bin/python -m bench.cold_start [--runs 7] [--package]

Each run is a new Python process with the function's environment (no AWS endpoint: nothing is
contacted at import) that imports `app` and reports how long the import took; the median, best
and worst of `--runs` are printed, with the slowest top-level imports of one run
(`python -X importtime`). Lambda adds its own start (runtime, zip extraction) to this.

By default the app is imported from this checkout, with the development venv's packages (which
also see Debian's). With `--package` it is imported from the Lambda package the deploy uploads
(infra/package.py: built once per version of the code, from PyPI), unpacked, with nothing else
on the path and the environment the template gives the function: what Lambda imports. As on
Lambda, whose folder is read-only, no bytecode is written then: the import uses what the package
ships (infra/package.py compiles it), and compiles what it lacks at every run.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bench.common import json_line, table

ROOT = Path(__file__).resolve().parent.parent
PROBE = "import time; t = time.perf_counter(); import app; print(time.perf_counter() - t)"
LAMBDA_ENV = {
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "qfc-api", "QFC_TABLE_PREFIX": "qfc-", "QFC_BUCKET": "bench",
}
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)")


def _environment(package: Path | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("QFC_", "AWS_"))}
    # "0" lets Python write bytecode; any other value stops it.
    env = {**env, **LAMBDA_ENV, "PYTHONDONTWRITEBYTECODE": "0" if package is None else "1"}
    if package is None:
        return env
    from infra.environment import service_environment

    deployed = {name: value for name, value in service_environment("qfc-api").items()
                if isinstance(value, str)}
    return {**env, **deployed, "PYTHONPATH": str(package), "LAMBDA_TASK_ROOT": str(package)}


def _python(package: Path | None) -> list[str]:
    """The interpreter; for the package, without any site-packages (-S) nor this checkout."""
    return [sys.executable, "-S"] if package is not None else [sys.executable]


def import_seconds(package: Path | None = None) -> float:
    run = subprocess.run([*_python(package), "-c", PROBE], cwd=package or ROOT, env=_environment(package),
                         capture_output=True, text=True, check=True)
    return float(run.stdout.strip().splitlines()[-1])


def slowest_imports(package: Path | None = None, top: int = 8) -> list[tuple[str, float]]:
    """Packages by the time their own modules took to import (self time summed), in milliseconds."""
    run = subprocess.run([*_python(package), "-X", "importtime", "-c", "import app"], cwd=package or ROOT,
                         env=_environment(package), capture_output=True, text=True, check=True)
    packages: dict[str, float] = {}
    for match in IMPORT_LINE.finditer(run.stderr):
        root = match.group(2).split(".")[0]
        packages[root] = packages.get(root, 0) + int(match.group(1)) / 1000
    return sorted(packages.items(), key=lambda item: -item[1])[:top]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--package", action="store_true", help="import the app from the Lambda package")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cold-start-") as unpacked:
        package = _unpacked_package(Path(unpacked)) if args.package else None
        import_seconds(package)  # the checkout's bytecode compiled once; the files read once
        runs = [import_seconds(package) * 1000 for _ in range(args.runs)]
        slowest = slowest_imports(package)
    figures = {"median_ms": round(statistics.median(runs), 1), "best_ms": round(min(runs), 1),
               "worst_ms": round(max(runs), 1)}
    where = "the Lambda package" if args.package else "this checkout"
    print(table((f"import app from {where} (fresh interpreter)", "median ms", "best ms", "worst ms"),
                [(f"{args.runs} runs", figures["median_ms"], figures["best_ms"], figures["worst_ms"])]))
    print()
    print(table(("slowest packages to import (one run)", "ms"),
                [(name, round(ms, 1)) for name, ms in slowest]))
    print(json_line("cold_start", runs=args.runs, package=args.package, import_app=figures,
                    slowest_imports_ms={name: round(ms, 1) for name, ms in slowest}))
    return 0


def _unpacked_package(folder: Path) -> Path:
    from infra.package import cached_package

    zipped, _ = cached_package(ROOT / "build")
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(folder)
    return folder


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
