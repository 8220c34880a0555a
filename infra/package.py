"""Builds the API's Lambda zip: `python -m infra.package --out build/lambda.zip`.

The zip holds app.py, chalicelib/ but its maintenance layer (administration from a shell, never
run by the function) and the runtime dependencies listed in pyproject.toml,
installed as manylinux x86_64 wheels for CPython 3.11: Lambda's platform, whatever machine
builds it (argon2, cffi and Pillow contain compiled code). Needs network access to PyPI.

It holds every module's bytecode too: the function's folder is read-only, so a module without
it is compiled again at every cold start (that doubled the import of app.py: bench/README.md).
The bytecode is checked by nothing but its presence (`unchecked-hash`: the zip's dates are fixed,
and the code never changes under a deployed function), and names /var/task, the function's folder.
"""

from __future__ import annotations

import argparse
import hashlib
import os
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
# Where Lambda puts the function's code: the path the bytecode names, as tracebacks show it.
LAMBDA_TASK_ROOT = "/var/task"
BYTECODE = "unchecked-hash"
# Every entry of the zip gets this date and these permissions, so that the same content makes
# the same zip, byte for byte (its SHA-256 is its key in the deployment bucket).
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
ZIP_FILE_MODE = 0o644 << 16
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
    """Zips `source`, the same bytes for the same files; returns the unzipped size in bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    unzipped = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                entry = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=ZIP_DATE)
                entry.external_attr = ZIP_FILE_MODE
                entry.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(entry, path.read_bytes())
                unzipped += path.stat().st_size
    return unzipped


def compile_bytecode(staging: Path) -> None:
    """Every module's bytecode beside it, for Lambda's Python, the same bytes for the same code.
    Forced (`-f`): pip wrote some already, checked by the source's date, which the zip changes."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" != LAMBDA_PYTHON:
        raise RuntimeError(f"the Lambda package is built with Python {LAMBDA_PYTHON}, whose bytecode "
                           f"Lambda's runtime reads; this is {sys.version.split()[0]}")
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-f", "-j", "0", "--invalidation-mode", BYTECODE,
         "-s", str(staging), "-p", LAMBDA_TASK_ROOT, str(staging)],
        # sets and frozensets in the bytecode keep one order
        env={**os.environ, "PYTHONHASHSEED": "0"}, check=True, stdout=subprocess.DEVNULL,
    )


def build_package(out: Path) -> int:
    with tempfile.TemporaryDirectory() as workdir:
        staging = Path(workdir)
        install_dependencies(runtime_requirements(), staging)
        copy_app(staging)
        compile_bytecode(staging)
        return write_zip(staging, out)


def _app_files() -> list[Path]:
    files = [REPO / module for module in APP_MODULES]
    for package in APP_PACKAGES:
        files += [path for path in (REPO / package).rglob("*")
                  if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
                  and not any(path.is_relative_to(REPO / folder) for folder in LEFT_OUT)]
    return sorted(files)


def inputs_digest() -> str:
    """What the package is made of: the requirements, the platform and the app's files."""
    digest = hashlib.sha256()
    digest.update("\n".join([*runtime_requirements(), LAMBDA_PLATFORM, LAMBDA_PYTHON, BYTECODE]).encode())
    for path in _app_files():
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cached_package(build_dir: Path) -> tuple[Path, bool]:
    """The package for the current inputs, built unless `build_dir` holds it already; whether it
    was built. (Requirements with a version range resolve to what PyPI had at the first build:
    remove the build folder to pick up newer releases.)"""
    out = build_dir / f"lambda-{inputs_digest()[:16]}.zip"
    if out.exists():
        return out, False
    partial = out.with_suffix(f".{os.getpid()}.partial")
    unzipped = build_package(partial)
    if unzipped > LAMBDA_UNZIPPED_LIMIT:
        partial.unlink()
        raise ValueError(f"the Lambda package would be {unzipped} bytes unzipped; Lambda accepts "
                         f"at most {LAMBDA_UNZIPPED_LIMIT}")
    partial.replace(out)
    return out, True


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
