"""The job image's Debian content, read on a Debian machine that has its packages installed (every
development machine and CI: `./dev` installs them): what the image installs, what it removes
again (job_containers/apt-build-only.txt) and their installed sizes, from dpkg's own records.

    python -m infra.image_estimate      prints the estimate docs/deploy.md quotes

The Python packages the image adds (its /venv) are about the size of the API's Lambda package
unzipped, which `python -m infra.package` reports: the same requirements.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = REPO / "job_containers" / "apt-packages.txt"
BUILD_ONLY = REPO / "job_containers" / "apt-build-only.txt"


def listed(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


@dataclass(frozen=True)
class Installed:
    depends: dict[str, list[list[str]]]  # per package: its dependencies, each a list of alternatives
    provides: dict[str, list[str]]  # virtual package -> installed packages that provide it
    size_kib: dict[str, int]
    required: set[str]  # Priority: required, what debian:bookworm-slim holds (with apt)

    @classmethod
    def read(cls) -> Installed:
        fields = ("${Package}\t${Status}\t${Pre-Depends}, ${Depends}\t${Provides}\t${Installed-Size}"
                  "\t${Priority}\n")
        listing = subprocess.run(["dpkg-query", "-W", f"-f={fields}"], capture_output=True, text=True,
                                 check=True).stdout
        depends, provides, sizes, required = {}, {}, {}, set()
        for line in listing.splitlines():
            name, status, relations, provided, size, priority = line.split("\t")
            if not status.endswith("ok installed"):
                continue
            depends[name] = [[_name(alternative) for alternative in clause.split("|")]
                             for clause in relations.split(",") if clause.strip()]
            for virtual in provided.split(","):
                if virtual.strip():
                    provides.setdefault(_name(virtual), []).append(name)
            sizes[name] = int(size or 0)
            if priority == "required":
                required.add(name)
        return cls(depends, provides, sizes, required)

    def _installed_as(self, name: str) -> str | None:
        if name in self.depends:
            return name
        return next(iter(self.provides.get(name, [])), None)

    def closure(self, roots: list[str]) -> set[str]:
        """The roots and everything they depend on, as installed here (the first alternative
        that is installed)."""
        found: set[str] = set()
        waiting = list(roots)
        while waiting:
            package = self._installed_as(waiting.pop())
            if package is None or package in found:
                continue
            found.add(package)
            for alternatives in self.depends[package]:
                chosen = next((p for p in map(self._installed_as, alternatives) if p), None)
                if chosen:
                    waiting.append(chosen)
        return found

    def size_mib(self, packages: set[str]) -> float:
        return sum(self.size_kib[p] for p in packages) / 1024


def _name(relation: str) -> str:
    """`libfoo1 (>= 2.0)` or `python3:any` -> the package name."""
    return relation.strip().split(" ")[0].split(":")[0]


def main() -> int:
    installed = Installed.read()
    base = installed.closure([*installed.required, "apt"])
    image = installed.closure(listed(PACKAGES))
    removed = set(listed(BUILD_ONLY)) & image
    print(f"base (debian:bookworm-slim, Priority required and apt): {len(base)} packages, "
          f"{installed.size_mib(base):.0f} MiB installed")
    added = image - base
    print(f"added by apt-packages.txt: {len(added)} packages, {installed.size_mib(added):.0f} MiB")
    print(f"removed again (apt-build-only.txt): {len(removed)} packages, "
          f"{installed.size_mib(removed):.0f} MiB")
    print(f"Debian content of the image: {installed.size_mib((base | image) - removed):.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
