"""The job image is kept slim by removing, in the layer that installs them, the Debian packages its
packages drag in that no job uses (job_containers/apt-build-only.txt). Docker does not run here,
so what the removal could break is checked on this machine, which has every package installed
(`./dev` installs the image's list): nothing the image keeps links to a library, or imports a
Python module, of a removed package."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from infra.image_estimate import BUILD_ONLY, PACKAGES, Installed, listed

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "job_containers" / "Dockerfile"
BATCH = 200


@pytest.fixture(scope="module")
def installed() -> Installed:
    return Installed.read()


@pytest.fixture(scope="module")
def image(installed) -> set[str]:
    return installed.closure(listed(PACKAGES))


def files_of(packages: set[str]) -> list[Path]:
    listing = subprocess.run(["dpkg", "-L", *sorted(packages)], capture_output=True, text=True,
                             check=True).stdout
    return [Path(line) for line in listing.splitlines() if line.startswith("/")]


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(4) == b"\x7fELF"
    except OSError:
        return False


def needed_libraries(paths: list[Path]) -> dict[str, set[str]]:
    """The shared libraries each ELF file asks the loader for (its DT_NEEDED entries)."""
    needed: dict[str, set[str]] = {}
    for start in range(0, len(paths), BATCH):
        dump = subprocess.run(["readelf", "-d", "-W", *map(str, paths[start:start + BATCH])],
                              capture_output=True, text=True, check=False).stdout
        current = ""
        for line in dump.splitlines():
            if line.startswith("File: "):
                current = line[len("File: "):]
            elif found := re.search(r"\(NEEDED\)\s+Shared library: \[(.+)\]", line):
                needed.setdefault(current, set()).add(found.group(1))
    return needed


def test_every_removed_package_is_one_the_image_installs(image):
    removed = listed(BUILD_ONLY)
    assert sorted(set(removed) - image) == []
    assert not set(removed) & set(listed(PACKAGES))


def test_nothing_the_image_keeps_links_to_a_removed_library(image):
    removed = set(listed(BUILD_ONLY))
    kept_files = [path for path in files_of(image - removed) if path.is_file() and not path.is_symlink()]
    libraries_of = {name: {path.name for path in files_of({name}) if ".so" in path.name} for name in image}
    kept_names = set().union(*(libraries_of[name] for name in image - removed))
    removed_names = set().union(*(libraries_of[name] for name in removed)) - kept_names

    needed = needed_libraries([path for path in kept_files if is_elf(path)])

    assert len(needed) > 500  # QGIS, GDAL, Qt and Python's extension modules were all read
    assert {file: names & removed_names for file, names in needed.items() if names & removed_names} == {}


def test_nothing_the_image_keeps_imports_a_removed_python_module(image):
    removed = set(listed(BUILD_ONLY))
    modules = {path.name.removesuffix(".py") for path in files_of(removed)
               if path.parent.name == "dist-packages" and (path.suffix == ".py" or path.is_dir())}
    assert {"pythran", "gast", "beniget", "ply"} <= modules
    importing = re.compile(rb"^\s*(?:import|from)\s+(" + "|".join(map(re.escape, modules)).encode() + rb")\b",
                           re.MULTILINE)

    importers = [path for path in files_of(image - removed)
                 if path.suffix == ".py" and path.is_file() and importing.search(path.read_bytes())]

    assert importers == []


def test_the_dockerfile_removes_them_in_the_layer_that_installs_them_and_builds_nothing():
    steps = re.split(r"\n(?=[A-Z]+ )", DOCKERFILE.read_text())
    (install,) = [step for step in steps if "apt-get install" in step]
    (python,) = [step for step in steps if "pip install" in step]

    assert install.startswith("RUN ")
    assert "apt-build-only.txt | grep -v '^$' | xargs dpkg --purge --force-depends" in install
    assert install.index("apt-get install") < install.index("dpkg --purge")
    # No compiler is left: Python packages come as wheels only.
    assert "--only-binary=:all:" in python
    assert os.path.basename(BUILD_ONLY) in "".join(step for step in steps if step.startswith("COPY "))
