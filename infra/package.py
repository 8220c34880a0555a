"""Builds the API's Lambda zip: `python -m infra.package --out build/lambda.zip`.

The zip holds app.py, chalicelib/ but its maintenance layer (administration from a shell, never
run by the function) and the runtime dependencies listed in pyproject.toml,
installed as manylinux x86_64 wheels for CPython 3.11: Lambda's platform, whatever machine
builds it (argon2, cffi and Pillow contain compiled code). Needs network access to PyPI.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP_MODULES = ("app.py",)
APP_PACKAGES = ("chalicelib",)
LAMBDA_PLATFORM = "manylinux2014_x86_64"
LAMBDA_PYTHON = "3.11"
# Lambda refuses a function whose unzipped code is larger than this.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc")
# Folders of APP_PACKAGES the function never imports (tests/test_layers.py checks that it does not).
LEFT_OUT = (Path("chalicelib") / "maintenance",)


def runtime_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]


def install_dependencies(requirements: list[str], target: Path) -> None:
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--target", str(target),
            "--platform", LAMBDA_PLATFORM,
            "--implementation", "cp",
            "--python-version", LAMBDA_PYTHON,
            "--only-binary=:all:",
            *requirements,
        ],
        check=True,
    )


def copy_app(target: Path) -> None:
    for module in APP_MODULES:
        shutil.copy2(REPO / module, target / module)
    for package in APP_PACKAGES:
        shutil.copytree(REPO / package, target / package, ignore=_SKIPPED)
    for folder in LEFT_OUT:
        shutil.rmtree(target / folder)


def write_zip(source: Path, out: Path) -> int:
    """Zips `source`; returns the unzipped size in bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    unzipped = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(source).as_posix())
                unzipped += path.stat().st_size
    return unzipped


def build_package(out: Path) -> int:
    with tempfile.TemporaryDirectory() as workdir:
        staging = Path(workdir)
        install_dependencies(runtime_requirements(), staging)
        copy_app(staging)
        return write_zip(staging, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/lambda.zip"))
    args = parser.parse_args(argv)
    unzipped = build_package(args.out)
    print(f"Wrote {args.out}: {args.out.stat().st_size} bytes, {unzipped} unzipped", file=sys.stderr)
    if unzipped > LAMBDA_UNZIPPED_LIMIT:
        print(f"error: Lambda accepts at most {LAMBDA_UNZIPPED_LIMIT} bytes unzipped", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
